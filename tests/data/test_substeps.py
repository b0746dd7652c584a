"""Sub-step rows: which scene calls qualify, and ``--substeps N``: at most N rows in all, a
seeded sample that is the same in every format and file type, and again on re-export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matrix_align.cli.app import app
from matrix_align.data.export import export_samples
from matrix_align.data.substeps import SUBSTEP_STAGES, choose, qualifies
from matrix_align.errors import MatrixAlignError
from matrix_align.simulation.trace import ModelCall

TINY = ["--roles", "2", "--steps", "2"]
MESSAGES = [{"role": "user", "content": "scene so far; your move"}]


def call(**fields) -> ModelCall:  # noqa: ANN003
    return ModelCall(**{"stage": "modulate", "messages": MESSAGES, "output": "{}", **fields})


@pytest.mark.parametrize("stage", SUBSTEP_STAGES)
def test_the_simulations_own_calls_qualify(stage: str) -> None:
    assert qualifies(call(stage=stage))


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"stage": "initial"}, "the first answer: the one the scene corrects"),
        ({"stage": "initial_summary"}, "answer writing, its input is the draft"),
        ({"stage": "final"}, "the sample's own row already"),
        ({"attempt": 2}, "a re-ask: its prompt holds the invalid reply"),
        ({"valid": False, "error": "verdict: field required"}, "an invalid reply"),
        ({"error": "timeout"}, "a call that errored"),
        ({"output": "  "}, "an empty output"),
        ({"messages": []}, "no prompt"),
    ],
)
def test_other_calls_do_not(fields: dict, why: str) -> None:
    assert not qualifies(call(**fields)), why


def test_choose_is_seeded_order_free_and_stable_as_the_set_grows() -> None:
    ids = [f"scene{i}-{j:03d}" for i in range(40) for j in range(20)]
    first = choose(ids, 50, seed=0)
    assert len(first) == 50 and first <= set(ids)
    assert choose(list(reversed(ids)), 50, seed=0) == first  # the file's order does not matter
    assert choose(ids, 50, seed=1) != first
    assert choose(ids[:30], 50, seed=0) == set(ids[:30])  # fewer than N: all of them
    grown = choose([*ids, *(f"new{i}-000" for i in range(200))], 50, seed=0)
    assert grown & set(ids) <= first  # growth only swaps chosen rows for new ones


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted generate run with every qualifying sub-step exported."""
    out = tmp_path_factory.mktemp("substeps") / "run"
    result = CliRunner().invoke(
        app,
        ["generate", "--backend", "scripted", "--source", "advbench:matrix:4",
         "--source", "vicuna-bench:direct:2", "--output", str(out), "--quiet",
         "--include-substeps", "--seed", "7", *TINY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def substeps_of(path: Path) -> list[dict]:
    return [r for r in rows(path) if r["mode"] == "substep"]


def test_include_substeps_exports_every_qualifying_call_and_says_which(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text("utf-8"))
    info = summary["export_substeps"]
    subs = substeps_of(run / "exports/jsonl/prompt_completion.jsonl")
    assert info["cap"] is None and info["kept"] == info["qualifying"] == len(subs) > 0
    stages = [json.loads(r["meta"])["stage"] for r in subs]
    assert set(stages) <= set(SUBSTEP_STAGES) and "initial" not in stages
    assert sum(info["by_stage"].values()) == len(subs)
    assert {stage: stages.count(stage) for stage in set(stages)} == info["by_stage"]


def test_substeps_caps_with_a_seeded_sample_the_same_in_every_file(
    run: Path, tmp_path: Path
) -> None:
    everything = {r["id"] for r in substeps_of(run / "exports/jsonl/prompt_completion.jsonl")}
    result = export_samples(run / "samples.jsonl", tmp_path / "a", substeps=5, substep_seed=7)
    assert result.substeps is not None and result.substeps["kept"] == 5
    assert result.substeps["qualifying"] == len(everything)
    ids = {r["id"] for r in substeps_of(tmp_path / "a/jsonl/prompt_completion.jsonl")}
    assert len(ids) == 5 and ids <= everything
    assert {r["id"] for r in substeps_of(tmp_path / "a/jsonl/messages.jsonl")} == ids
    import datasets

    hf = datasets.load_from_disk(str(tmp_path / "a/hf/prompt_completion"))
    assert {r["id"] for r in hf if r["mode"] == "substep"} == ids
    main = [r for r in rows(tmp_path / "a/jsonl/prompt_completion.jsonl") if r["mode"] != "substep"]
    assert len(main) == 6  # the capped rows come on top of every sample's own row
    provenance = json.loads((tmp_path / "a/provenance.json").read_text("utf-8"))
    assert provenance["substeps"]["cap"] == 5

    again = export_samples(run / "samples.jsonl", tmp_path / "b", substeps=5, substep_seed=7,
                           file_types=["jsonl"])  # fmt: skip
    assert again.substeps == result.substeps
    assert {r["id"] for r in substeps_of(tmp_path / "b/jsonl/prompt_completion.jsonl")} == ids
    other = export_samples(run / "samples.jsonl", tmp_path / "c", substeps=5, substep_seed=8,
                           file_types=["jsonl"])  # fmt: skip
    assert other.substeps is not None
    assert {r["id"] for r in substeps_of(tmp_path / "c/jsonl/prompt_completion.jsonl")} != ids
    many = export_samples(run / "samples.jsonl", tmp_path / "d", substeps=10_000,
                          file_types=["jsonl"])  # fmt: skip
    assert many.substeps is not None and many.substeps["kept"] == len(everything)


def test_dropped_samples_take_their_substeps_with_them(run: Path, tmp_path: Path) -> None:
    """Flag one scene as dropped: none of its calls is a candidate any more."""
    samples = rows(run / "samples.jsonl")
    scene = next(s for s in samples if s["mode"] == "matrix")
    scene["flags"] = ["empty-answer"]
    edited = tmp_path / "samples.jsonl"
    edited.write_text("".join(json.dumps(s) + "\n" for s in samples), "utf-8")
    result = export_samples(edited, tmp_path / "x", substeps=1000, file_types=["jsonl"])
    kept = substeps_of(tmp_path / "x/jsonl/prompt_completion.jsonl")
    assert result.dropped == 1 and kept
    assert scene["id"] not in {json.loads(r["meta"])["parent_id"] for r in kept}


def test_the_commands_take_substeps_and_export_reuses_the_runs_seed(
    run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "capped"
    result = CliRunner().invoke(
        app,
        ["generate", "--backend", "scripted", "--source", "advbench:matrix:4",
         "--source", "vicuna-bench:direct:2", "--output", str(out), "--quiet",
         "--substeps", "4", "--seed", "7", *TINY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sub-steps: 4 of" in " ".join(result.output.split())
    generated = {r["id"] for r in substeps_of(out / "exports/jsonl/prompt_completion.jsonl")}
    assert len(generated) == 4
    result = CliRunner().invoke(
        app, ["export", str(out), "--to", str(tmp_path / "re"), "-t", "jsonl", "--substeps", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "seed 7" in result.output  # the run's --seed, from run.json
    assert {r["id"] for r in substeps_of(tmp_path / "re/jsonl/prompt_completion.jsonl")} == (
        generated
    )


def test_a_bad_cap_is_refused(run: Path, tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="positive whole number"):
        export_samples(run / "samples.jsonl", tmp_path, substeps=0)
    result = CliRunner().invoke(app, ["export", str(run), "--substeps", "0"])
    assert result.exit_code == 2
