"""Exports load with ``datasets`` (load_from_disk, load_dataset json/parquet) and have
exactly TRL's columns plus the provenance columns trainers ignore."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest

from matrix_align.data.export import FILE_TYPES, columns, export_run, export_samples
from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.data.records import EXPORT_FORMATS
from matrix_align.errors import MatrixAlignError
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.simulation.config import SimulationConfig

TRL = {
    "prompt_completion": ["prompt", "completion"],
    "messages": ["messages"],
    "preference": ["prompt", "chosen", "rejected"],
}
EXTRA = ["id", "source", "mode", "trace", "meta"]


class EagerFirstAnswer:
    """The scripted demo, except that the model's own first answer (a lone user message)
    is an eager one, so the MATRIX answer differs from it and preference pairs exist."""

    name = "eager"

    def __init__(self) -> None:
        self.inner = ScriptedModel.demo()

    async def complete(self, messages, **kwargs):  # noqa: ANN001, ANN201
        result = await self.inner.complete(messages, **kwargs)
        if len(messages) == 1 and messages[0]["role"] == "user":
            result.text = "Sure, here is exactly how to do that, step by step."
        return result


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    config = SimulationConfig(n_roles=1, n_steps=1)
    plan = build_plan(
        [SourceSpec.parse("advbench:matrix:3"), SourceSpec.parse("vicuna-bench:direct:2")],
        config=config,
        model_key="scripted:default",
        hub="never",
    )
    options = GenerateOptions(output=out, include_substeps=True)
    asyncio.run(generate(plan, EagerFirstAnswer(), config, options, model_info={}))
    return out


def load_folder(dest: Path, *args: str, **kwargs: str) -> Any:
    """``load_dataset`` on an export folder, with a cache of its own: the shared cache knows
    a folder by its path, and pytest reuses temporary paths across sessions (a stale cache
    once returned another session's rows)."""
    cache = tempfile.mkdtemp(dir=dest.parent)
    return datasets.load_dataset(str(dest), *args, cache_dir=cache, **kwargs)


def load(kind: str, path: Path) -> datasets.Dataset:
    if kind == "hf":
        return datasets.load_from_disk(str(path))
    loader = {"jsonl": "json"}.get(kind, kind)
    return datasets.load_dataset(loader, data_files=str(path), split="train")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_export_loads_with_exactly_the_trl_columns(run_folder: Path, fmt: str) -> None:
    summary = json.loads((run_folder / "summary.json").read_text("utf-8"))
    assert set(summary["exports"][fmt]) == {"rows", *FILE_TYPES}
    loaded = {kind: load(kind, Path(summary["exports"][fmt][kind])) for kind in FILE_TYPES}
    for kind, dataset in loaded.items():
        assert dataset.column_names == TRL[fmt] + EXTRA == list(columns(fmt)), kind
        assert len(dataset) == summary["exports"][fmt]["rows"]
    assert loaded["hf"].features == loaded["parquet"].features
    assert loaded["hf"].to_list() == loaded["jsonl"].to_list() == loaded["parquet"].to_list()
    row = loaded["hf"][0]
    for column in TRL[fmt]:
        assert all(set(m) == {"role", "content"} for m in row[column])
    meta = json.loads(row["meta"])
    assert "generation" in meta and "source_id" in meta


def test_views_carry_the_right_answers(run_folder: Path) -> None:
    pc = datasets.load_from_disk(str(run_folder / "exports/hf/prompt_completion"))
    main = [r for r in pc if r["mode"] != "substep"]
    assert sorted(r["mode"] for r in main) == ["direct", "direct", "matrix", "matrix", "matrix"]
    for r in main:
        trace = json.loads(r["trace"])
        assert r["prompt"] == [{"role": "user", "content": trace["query"]}]
        assert r["completion"] == [{"role": "assistant", "content": trace["final_response"]}]
    substeps = [r for r in pc if r["mode"] == "substep"]
    assert substeps and all(r["trace"] == "" for r in substeps)
    assert {json.loads(r["meta"])["parent_id"] for r in substeps} == {
        r["id"] for r in main if r["mode"] == "matrix"
    }
    messages = datasets.load_from_disk(str(run_folder / "exports/hf/messages"))
    assert [m["role"] for m in messages[0]["messages"]][-1] == "assistant"
    pref = datasets.load_from_disk(str(run_folder / "exports/hf/preference"))
    assert len(pref) == 3 and set(pref["mode"]) == {"matrix"}
    for r in pref:
        trace = json.loads(r["trace"])
        assert r["chosen"][0]["content"] == trace["final_response"]
        assert r["rejected"][0]["content"] == trace["initial_response"]


def test_export_options(run_folder: Path, tmp_path: Path) -> None:
    result = export_samples(
        run_folder / "samples.jsonl",
        tmp_path,
        formats=["prompt_completion"],
        file_types=["jsonl", "hf"],
        with_traces=False,
    )
    assert result.rows == {"prompt_completion": 5}  # no substeps unless asked
    dataset = datasets.load_from_disk(str(tmp_path / "hf/prompt_completion"))
    assert set(dataset["trace"]) == {""}
    assert not (tmp_path / "parquet").exists()
    with pytest.raises(MatrixAlignError, match="Unknown export format"):
        export_samples(run_folder / "samples.jsonl", tmp_path, formats=["dpo"])
    with pytest.raises(MatrixAlignError, match="No samples to export"):
        export_run(tmp_path / "nothing-here")


def test_an_empty_preference_set_still_has_its_columns(tmp_path: Path) -> None:
    config = SimulationConfig(n_roles=1, n_steps=1)
    plan = build_plan([SourceSpec.parse("vicuna-bench:direct:1")], config=config,
                      model_key="k", hub="never")  # fmt: skip
    options = GenerateOptions(output=tmp_path)
    asyncio.run(generate(plan, ScriptedModel.demo(), config, options, model_info={}))
    exports = tmp_path / "exports"
    assert (exports / "jsonl/preference.jsonl").read_text("utf-8") == ""
    table = pq.read_table(exports / "parquet/preference.parquet")
    assert table.num_rows == 0 and table.column_names == TRL["preference"] + EXTRA
    dataset = datasets.load_from_disk(str(exports / "hf/preference"))
    assert len(dataset) == 0 and dataset.column_names == TRL["preference"] + EXTRA


def test_an_export_into_a_folder_another_export_holds_is_refused(
    run_folder: Path, tmp_path: Path
) -> None:
    from matrix_align.folders.store import DirectoryLock

    dest = tmp_path / "busy"
    with DirectoryLock(dest), pytest.raises(MatrixAlignError, match="Another matrix-align"):
        export_samples(run_folder / "samples.jsonl", dest, file_types=["jsonl"])
    assert not (dest / "jsonl").exists()
    result = export_samples(run_folder / "samples.jsonl", dest, file_types=["jsonl"])
    assert result.rows["messages"] > 0
    assert not list(dest.rglob("*.tmp")), "temp files are unique and renamed away"


def test_a_file_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": "world"}\nplain text\n')
    with pytest.raises(MatrixAlignError, match="holds no sample records"):
        export_samples(other, tmp_path / "x")
    assert not (tmp_path / "x" / "jsonl").exists()
    empty = tmp_path / "samples.jsonl"
    empty.write_text("")  # a run with no finished sample yet exports empty datasets
    assert export_samples(empty, tmp_path / "y", file_types=["jsonl"]).rows["messages"] == 0


def card_metadata(folder: Path) -> dict:
    from huggingface_hub import DatasetCard

    return DatasetCard.load(folder / "README.md").data.to_dict()


def test_the_card_beside_an_export_makes_it_load_without_a_config_name(
    run_folder: Path, tmp_path: Path
) -> None:
    # Written by every export, not only a push; `load_dataset(folder)` once stopped at
    # "Config name is missing" for want of a default config.
    dest = tmp_path / "exports"
    result = export_samples(run_folder / "samples.jsonl", dest)
    assert result.card == dest / "README.md"
    meta = card_metadata(dest)
    assert [c.get("default", False) for c in meta["configs"]] == [True, False, False]
    assert meta["configs"][0]["config_name"] == "prompt_completion"
    # AdvBench (MIT) and Vicuna-Bench (Apache-2.0): "other", named and linked.
    assert (meta["license"], meta["license_name"]) == ("other", "derived-from-sources")
    assert meta["license_link"] == "README.md#sources-and-licences"
    assert meta["size_categories"] == ["n<1K"] and meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["source_datasets"] == ["walledai/AdvBench"]
    loaded = load_folder(dest)
    assert list(loaded) == ["train"]
    assert len(loaded["train"]) == result.rows["prompt_completion"]
    assert loaded["train"].column_names == list(columns("prompt_completion"))
    prefs = load_folder(dest, "preference", split="train")
    assert len(prefs) == result.rows["preference"]


def test_licence_fields_are_complete() -> None:
    from matrix_align.data.card import licence_fields, size_category

    assert licence_fields(["MIT", "Apache-2.0"], False) == {
        "license": "other",
        "license_name": "derived-from-sources",
        "license_link": "README.md#sources-and-licences",
    }
    assert licence_fields([None], False)["license"] == "other"  # a user's file
    assert licence_fields(["MIT", "CC BY-NC 4.0"], True) == {"license": "cc-by-nc-4.0"}
    assert licence_fields(["Apache-2.0"], False) == {"license": "apache-2.0"}
    assert [size_category(n) for n in (0, 999, 1000, 25_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
    ]


def test_test_fraction_splits_the_samples_and_the_card_lists_the_split(
    run_folder: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "exports"
    result = export_samples(
        run_folder / "samples.jsonl", dest, include_substeps=True, test_fraction=0.4,
        substep_seed=3,
    )  # fmt: skip
    assert set(result.test_files) == set(EXPORT_FORMATS)
    assert (dest / "parquet/test/messages.parquet").is_file()
    assert (dest / "hf/test/messages/state.json").is_file()
    loaded = load_folder(dest)
    assert set(loaded) == {"train", "test"}
    train, test = loaded["train"], loaded["test"]
    # 5 samples: 2 held out; a scene's sub-step rows stay in its split.
    main = [r["id"] for r in test if r["mode"] != "substep"]
    assert len(main) == 2 and len(test) == result.test_rows["prompt_completion"]
    parents = {json.loads(r["meta"]).get("parent_id") for r in test if r["mode"] == "substep"}
    assert parents <= set(main)
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    again = export_samples(run_folder / "samples.jsonl", tmp_path / "again", include_substeps=True,
                           test_fraction=0.4, substep_seed=3)  # fmt: skip
    assert again.test_rows == result.test_rows  # seeded
    provenance = json.loads((dest / "provenance.json").read_text("utf-8"))
    assert provenance["test_fraction"] == 0.4 and provenance["split_seed"] == 3
    # Without a split, a rerun into the folder leaves no test files of the earlier one.
    export_samples(run_folder / "samples.jsonl", dest)
    assert not (dest / "parquet/test").exists()
    assert list(load_folder(dest)) == ["train"]
    with pytest.raises(MatrixAlignError, match="between 0 and 1"):
        export_samples(run_folder / "samples.jsonl", dest, test_fraction=1.0)
