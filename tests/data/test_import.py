"""`matrix-align import`: FastChat/ShareGPT files become the sample records a generate folder
holds; multi-turn conversations follow --turns; malformed files are one clear error naming
the record; the output folder is written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from matrix_align.data.export import export_run
from matrix_align.data.importer import import_conversations
from matrix_align.errors import MatrixAlignError
from tests.conftest import run_main

FASTCHAT = [
    {
        "id": "identity_0",
        "conversations": [
            {"from": "human", "value": "How do I get into my neighbour's wifi?"},
            {"from": "gpt", "value": "I can't help with that; ask them for the password."},
        ],
    },
    {
        "id": "identity_1",
        "lang": "en",
        "conversations": [
            {"from": "human", "value": "Hi!"},
            {"from": "gpt", "value": "Hello, how can I help?"},
            {"from": "human", "value": "Name a fruit."},
            {"from": "gpt", "value": "A pear."},
        ],
    },
]


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def samples(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "samples.jsonl").read_text("utf-8").splitlines()]


def test_fastchat_each_turn_becomes_a_sample_with_its_context(tmp_path: Path) -> None:
    result = import_conversations(write(tmp_path / "m.json", FASTCHAT), tmp_path / "out",
                                  export=False)  # fmt: skip
    assert (result.conversations, result.samples) == (2, 3)
    rows = samples(tmp_path / "out")
    assert [r["mode"] for r in rows] == ["import"] * 3
    assert {r["source"] for r in rows} == {"import:m.json"}
    last = rows[2]
    assert last["prompt"] == [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Name a fruit."},
    ]
    assert last["completion"] == [{"role": "assistant", "content": "A pear."}]
    assert last["meta"] == {"lang": "en", "source_id": "identity_1", "turn": 2, "turns": 2,
                            "import": {"file": "m.json", "record": 2}}  # fmt: skip
    assert last["trace"] == "" and last["initial_response"] == "" and last["flags"] is None
    assert len({r["id"] for r in rows}) == 3
    run = json.loads((tmp_path / "out/run.json").read_text("utf-8"))
    assert run["kind"] == "import" and run["import"]["revision"].startswith("sha256:")
    assert run["provenance"]["datasets"]["import:m.json"]["origin"].startswith("file:")


def test_turns_last_gives_one_sample_per_conversation(tmp_path: Path) -> None:
    path = write(tmp_path / "m.json", FASTCHAT)
    result = import_conversations(path, tmp_path / "out", turns="last", export=False)
    rows = samples(tmp_path / "out")
    assert result.samples == 2 and [r["completion"][0]["content"] for r in rows] == [
        "I can't help with that; ask them for the password.",
        "A pear.",
    ]
    assert len(rows[1]["prompt"]) == 3  # the earlier exchange stays as context
    with pytest.raises(MatrixAlignError, match="Unknown --turns 'all'"):
        import_conversations(path, tmp_path / "x", turns="all")


def test_sharegpt_variants_jsonl_messages_and_a_system_prompt(tmp_path: Path) -> None:
    lines = [
        {"system": "Be brief.", "conversations": [{"from": "USER", "value": "2+2?"},
                                                  {"from": "chatgpt", "value": "4"}]},
        {"id": 7, "messages": [{"role": "user", "content": "Capital of France?"},
                               {"role": "assistant", "content": "Paris."}]},
    ]  # fmt: skip
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    import_conversations(path, tmp_path / "out", export=False, source="sharegpt-mix")
    rows = samples(tmp_path / "out")
    assert rows[0]["prompt"] == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "2+2?"}]  # fmt: skip
    assert rows[1]["meta"]["source_id"] == "7" and rows[1]["meta"]["import"]["record"] == 2
    assert {r["source"] for r in rows} == {"sharegpt-mix"}


def test_untrainable_turns_are_skipped_and_counted(tmp_path: Path) -> None:
    record = {
        "conversations": [
            {"from": "gpt", "value": "Welcome!"},  # before any user turn: dropped
            {"from": "human", "value": "a"},
            {"from": "gpt", "value": ""},  # empty
            {"from": "human", "value": "b"},
            {"from": "gpt", "value": "B."},
            {"from": "gpt", "value": "And more."},  # answers no user turn
            {"from": "human", "value": "c"},  # a last question without an answer
        ]
    }
    empty = {"id": "e", "conversations": [{"from": "human", "value": "anyone?"}]}
    result = import_conversations(write(tmp_path / "m.json", [record, empty]), tmp_path / "o",
                                  export=False)  # fmt: skip
    rows = samples(tmp_path / "o")
    assert [r["completion"][0]["content"] for r in rows] == ["B."]
    assert rows[0]["prompt"][0] == {"role": "user", "content": "a"}
    assert result.without_answer == 1
    assert sorted(result.skipped.values()) == [1, 1, 1]
    with pytest.raises(MatrixAlignError, match="nothing to train on"):
        import_conversations(write(tmp_path / "n.json", [empty]), tmp_path / "n")
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '[{"conversations": []},\n  {oops}]', r"json, line 2, column 4: not valid"),
        ("bad.json", '{"conversations": []}', "expected a JSON list of conversations, found a d"),
        ("bad.json", "[]", "holds no conversations"),
        ("bad.jsonl", '{"conversations": []}\n[1]\n', r"jsonl, line 2: expected a conversation"),
        ("bad.jsonl", '{"conversations": []}\n{"x\n', r"bad.jsonl, line 2: not valid JSON"),
        ("bad.json", '[{"conversations": []}, {"id": "r2", "text": "hi"}]',
         r"record 2 \(id 'r2'\): no 'conversations' \(or 'messages'\) list; its keys are: id, t"),
        ("bad.json", '[{"conversations": "hi"}]', "'conversations' must be a list of turns"),
        ("bad.json", '[{"conversations": ["hi"]}]', "record 1, turn 1: expected a turn object"),
        ("bad.json", '[{"id": 3, "conversations": [{"from": "observation", "value": "x"}]}]',
         r"record 1 \(id 3\), turn 1: speaker 'observation' is not a chat role"),
        ("bad.json", '[{"conversations": [{"from": "human", "value": null}]}]',
         "the turn's 'value' must be text, found missing"),
        ("bad.json", '[{"conversations": [{"from": "gpt", "value": ["x"]}]}]',
         "the turn's 'value' must be text, found a list"),
        ("bad.json", '[{"conversations": [{"text": "x"}]}]', "no speaker \\('from' or 'role'\\)"),
        ("bad.json", '[{"system": 5, "conversations": []}]', "'system' must be text"),
        ("bad.json", '[{"conversations": [{"from": "human", "value": "\\ud800"}]}]',
         "turn 1 holds '\\\\ud800'"),
        ("bad.txt", "hello", "unsupported file type '.txt'"),
        ("bad.json", '[{"id": "a\\udc80", "conversations": []}]', r"its 'id' holds '\\udc80'"),
        ("bad.json", "[" * 100_000, "nested too deeply"),
        ("bad.jsonl", '{"conversations": []}\n{"n": ' + "9" * 5000 + "}\n",
         r"bad.jsonl, line 2 holds an integer of more than 4,300 digits"),
    ],
)  # fmt: skip
def test_malformed_files_name_the_record_and_the_problem(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MatrixAlignError, match=message):
        import_conversations(path, tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()  # nothing half-written, no empty folder
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no leftovers either


def test_existing_folders_are_protected_and_a_failed_replace_keeps_the_old_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "m.json", FASTCHAT)
    out = tmp_path / "out"
    other = tmp_path / "run"
    other.mkdir()
    (other / "samples.jsonl").write_text("{}\n", "utf-8")
    with pytest.raises(MatrixAlignError, match="not an earlier import"):
        import_conversations(path, other, overwrite=True)
    assert (other / "samples.jsonl").read_text("utf-8") == "{}\n"

    import_conversations(path, out, export=False)
    first = samples(out)
    with pytest.raises(MatrixAlignError, match="already holds an import"):
        import_conversations(path, out, export=False)

    import matrix_align.data.export as export_module

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "export_samples", broken)
    with pytest.raises(OSError, match="disk full"):
        import_conversations(path, out, overwrite=True, turns="last")
    assert samples(out) == first  # the earlier import, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "out", "run"]
    monkeypatch.undo()

    import_conversations(path, out, overwrite=True, export=False)
    assert [r["id"] for r in samples(out)] == [r["id"] for r in first]  # stable ids
    empty = tmp_path / "empty"
    empty.mkdir()
    import_conversations(path, empty, export=False)  # an empty folder is fine
    assert len(samples(empty)) == 3


def test_an_import_exports_to_trl_formats_like_a_generate_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = import_conversations(write(tmp_path / "m.json", FASTCHAT), out)
    assert result.exports == {"prompt_completion": 3, "messages": 3, "preference": 0}
    pc = datasets.load_from_disk(str(out / "exports/hf/prompt_completion"))
    assert pc.column_names == ["prompt", "completion", "id", "source", "mode", "trace", "meta"]
    assert pc[2]["completion"] == [{"role": "assistant", "content": "A pear."}]
    messages = datasets.load_dataset("json", data_files=str(out / "exports/jsonl/messages.jsonl"),
                                     split="train")  # fmt: skip
    assert messages[2]["messages"] == [  # the whole conversation, as it was in the file
        {"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]}
        for t in FASTCHAT[1]["conversations"]
    ]
    again = export_run(out, formats=["prompt_completion"], file_types=["jsonl"])
    assert again.rows == {"prompt_completion": 3} and again.dropped == 0
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["counts"]["samples"] == 3 and summary["exports"]["messages"] == 3


def test_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    path = write(tmp_path / "m.json", FASTCHAT)
    code, out = run_main(monkeypatch, capsys, "import", str(path), "--output",
                         str(tmp_path / "o"), "--no-export")  # fmt: skip
    assert code == 0 and "imported 3 samples from 2 conversations" in out
    code, out = run_main(monkeypatch, capsys, "generate", "--backend", "scripted", "--source",
                         "advbench:1", "--output", str(tmp_path / "o"))  # fmt: skip
    assert code == 2 and "is a `matrix-align import` folder" in out
    bad = write(tmp_path / "bad.json", [{"conversations": [{"from": "tool", "value": "x"}]}])
    code, out = run_main(monkeypatch, capsys, "import", str(bad), "-o", str(tmp_path / "b"))
    assert code == 2 and "turn 1: speaker 'tool'" in out and "Traceback" not in out
    code, out = run_main(monkeypatch, capsys, "import", str(path))
    assert code == 2 and "import needs --output" in out


def test_import_takes_the_folder_lock_and_checks_the_folder_again_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matrix_align.data import importer
    from matrix_align.folders.store import DirectoryLock

    path = write(tmp_path / "m.json", FASTCHAT)
    out = tmp_path / "out"
    with DirectoryLock(out), pytest.raises(MatrixAlignError, match="Another matrix-align"):
        import_conversations(path, out, export=False)  # a generate is writing there

    # A writer that got in after the first check (here, while the file is read): its
    # samples are kept and the import is refused, never moved aside.
    def read_while_a_run_starts(file: Path) -> list:
        (out / "samples.jsonl").write_text('{"id": "theirs"}\n', "utf-8")
        return real_read(file)

    real_read = importer.read_conversations
    monkeypatch.setattr(importer, "read_conversations", read_while_a_run_starts)
    with pytest.raises(MatrixAlignError, match="already holds files and is not an earlier"):
        import_conversations(path, out, export=False)
    assert (out / "samples.jsonl").read_text("utf-8") == '{"id": "theirs"}\n'


def test_turns_each_refuses_output_that_grows_with_the_square_of_a_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """One long conversation under --turns each would be written hundreds of times over:
    refused before anything is written, naming it; --turns last imports it."""
    from matrix_align.data import turn_growth

    monkeypatch.setattr(turn_growth, "FLOOR_CHARS", 0)  # the bound's ratio, on a small file
    turns = [
        {"from": "human" if i % 2 == 0 else "gpt", "value": f"turn {i:03d} " + "x" * 90}
        for i in range(400)
    ]
    path = write(tmp_path / "long.json", [FASTCHAT[0], {"id": "long", "conversations": turns}])
    code, text = run_main(monkeypatch, capsys, "import", str(path), "-o", str(tmp_path / "each"))
    assert code == 2, text
    assert "grows with the square of its length (record 2: 200 answers" in text
    assert "--turns last" in text and "Traceback" not in text
    assert not (tmp_path / "each").exists()
    result = import_conversations(path, tmp_path / "last", turns="last", export=False)
    assert result.samples == 2
