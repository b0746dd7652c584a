"""Training data: found in every layout generate writes, reduced to TRL's columns, and bad
input refused with an error that names what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.train.data import load_train_data
from tests.train.helpers import sample_rows, write_jsonl


def test_generate_folder_sft_uses_the_prompt_completion_export(generate_dir: Path) -> None:
    data = load_train_data(generate_dir, "sft")
    assert data.path.name == "prompt_completion.jsonl"
    assert data.dataset.column_names == ["prompt", "completion"]  # id/trace/meta dropped
    assert data.n_train == 4 and data.n_dropped == 0
    assert data.sources == {"harmful": 2, "helpful": 2}
    first = data.dataset[0]
    assert first["prompt"][0]["role"] == "user"
    assert first["completion"] == [
        {"role": "assistant", "content": sample_rows()[0]["chosen"][0]["content"]}
    ]


def test_an_export_test_split_is_never_trained_on(generate_dir: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    # Only the held-out split has the sft columns in a name training prefers.
    write_jsonl(exports / "jsonl" / "test" / "prompt_completion.jsonl", sample_rows()[:1])
    write_jsonl(exports / "jsonl" / "train.jsonl", sample_rows())
    data = load_train_data(exports, "sft")
    assert data.path == exports / "jsonl" / "train.jsonl"


def test_generate_folder_dpo_uses_the_preference_export(generate_dir: Path) -> None:
    data = load_train_data(generate_dir, "dpo")
    assert data.path.name == "preference.jsonl"
    assert data.dataset.column_names == ["prompt", "chosen", "rejected"]
    assert data.n_train == 4


def test_parquet_and_save_to_disk(generate_dir: Path, tmp_path: Path) -> None:
    parquet = generate_dir / "exports" / "parquet" / "preference.parquet"
    from_parquet = load_train_data(parquet, "dpo")
    assert from_parquet.n_train == 4 and from_parquet.sources["harmful"] == 2
    from datasets import Dataset

    hf_dir = tmp_path / "hf"
    Dataset.from_list(
        [
            {**r, "trace": json.dumps(r["trace"]), "meta": json.dumps(r["meta"])}
            for r in sample_rows()
        ]
    ).save_to_disk(str(hf_dir))
    from_disk = load_train_data(hf_dir, "sft")
    assert from_disk.dataset.column_names == ["prompt", "completion"]
    assert from_disk.n_train == 4


def test_messages_become_prompt_completion(generate_dir: Path) -> None:
    data = load_train_data(generate_dir / "exports" / "jsonl" / "messages.jsonl", "sft")
    record = data.dataset[0]
    assert [m["role"] for m in record["prompt"]] == ["user"]
    assert [m["role"] for m in record["completion"]] == ["assistant"]


def test_plain_strings_become_conversational(tmp_path: Path) -> None:
    file = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "Hi?", "completion": "Hello."}])
    record = load_train_data(file, "sft").dataset[0]
    assert record == {
        "prompt": [{"role": "user", "content": "Hi?"}],
        "completion": [{"role": "assistant", "content": "Hello."}],
    }


def test_unusable_records_are_dropped_and_counted(tmp_path: Path) -> None:
    good = {"prompt": "q", "chosen": "safe answer", "rejected": "harmful answer"}
    file = write_jsonl(
        tmp_path / "p.jsonl",
        [good, {**good, "rejected": "safe answer"}, {**good, "chosen": ""}],
    )
    data = load_train_data(file, "dpo")
    assert data.n_train == 1 and data.n_dropped == 2
    assert data.drop_reasons == {"chosen equals rejected": 1, "empty text": 1}


def test_missing_columns_are_named(generate_dir: Path, tmp_path: Path) -> None:
    sft_file = generate_dir / "exports" / "jsonl" / "prompt_completion.jsonl"
    with pytest.raises(MatrixAlignError, match=r"lacks the column\(s\) chosen, rejected"):
        load_train_data(sft_file, "dpo")
    only_prompt = write_jsonl(tmp_path / "q.jsonl", [{"id": "1", "prompt": "q"}])
    with pytest.raises(MatrixAlignError, match=r"lacks the column\(s\) completion"):
        load_train_data(only_prompt, "sft")
    folder = tmp_path / "run"
    write_jsonl(folder / "samples.jsonl", [{"id": "1", "prompt": "q", "completion": "a"}])
    with pytest.raises(MatrixAlignError, match="samples.jsonl: \\[id, prompt, completion\\]"):
        load_train_data(folder, "dpo")


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="not found"):
        load_train_data(tmp_path / "missing", "sft")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "q", "completion": "a"}\n{not json\n', encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="broken.jsonl:2"):
        load_train_data(broken, "sft")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MatrixAlignError, match="No .jsonl or .parquet"):
        load_train_data(tmp_path / "empty", "sft")
    csv = tmp_path / "d.csv"
    csv.write_text("prompt,completion\n", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="Unsupported data file"):
        load_train_data(csv, "sft")
    junk = write_jsonl(tmp_path / "j.jsonl", [{"prompt": "q", "completion": ""}])
    with pytest.raises(MatrixAlignError, match="No usable sft records"):
        load_train_data(junk, "sft")
