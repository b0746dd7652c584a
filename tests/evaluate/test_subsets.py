"""Pinned subsets: the shipped manifests match their definitions and the shipped samples,
resolve checks names and texts, and ``evaluate --subset`` answers exactly those items."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.benchmarks import load_benchmark
from matrix_align.evaluate.subsets import (
    DEFINITIONS,
    MANIFEST_DIR,
    build_manifest,
    load_subset,
    resolve,
    subset_names,
)
from matrix_align.folders.results import read_results
from tests.conftest import run_main


def test_shipped_manifests_are_their_definitions() -> None:
    assert subset_names() == sorted(d.name for d in DEFINITIONS)
    for definition in DEFINITIONS:
        shipped = json.loads((MANIFEST_DIR / f"{definition.name}.json").read_text("utf-8"))
        assert shipped == build_manifest(definition), (
            f"{definition.name}: run python scripts/make_subsets.py"
        )


def test_human_eval_subset_is_every_pku_question_over_its_categories() -> None:
    subset = load_subset("pku-human-eval")
    records = {r.id: r for r in load_benchmark("pku-saferlhf", limit=None, hub="never").records}
    ids = [i for i, _ in subset.items["pku-saferlhf"]]
    assert len(ids) == len(set(ids)) == len(records) == 83  # all the shipped sample holds
    categories = [records[i].metadata["category"] for i in ids]
    assert len(set(categories[:8])) == 8  # round-robin: the first 8 cover the 8 categories
    assert Counter(categories)["Social Bias"] == 14


def test_resolve_keeps_benchmarks_and_prefixes() -> None:
    items = resolve("quick", ["advbench", "xstest"], limit=3)
    assert list(items) == ["advbench", "xstest"] and all(len(v) == 3 for v in items.values())
    assert resolve("paper-50")["pku-saferlhf"][:3] == resolve("paper-50", limit=3)["pku-saferlhf"]
    with pytest.raises(MatrixAlignError, match="no items of xstest"):
        resolve("pku-human-eval", ["xstest"])
    with pytest.raises(MatrixAlignError, match="Unknown subset 'nope'"):
        resolve("nope")


def test_a_manifest_whose_texts_changed_is_refused(tmp_path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {"benchmarks": {"advbench": [{"id": "advbench/1", "sha256": "0" * 16}, "advbench/2"]}}
        )
    )
    with pytest.raises(MatrixAlignError, match="another text than when pinned"):
        resolve(str(path))
    path.write_text(json.dumps({"benchmarks": {"advbench": ["advbench/1", "advbench/999"]}}))
    with pytest.raises(MatrixAlignError, match="not in the shipped sample"):
        resolve(str(path))
    path.write_text(json.dumps({"benchmarks": {"advbench": ["advbench/4", "advbench/1"]}}))
    assert resolve(str(path)) == {"advbench": ["advbench/4", "advbench/1"]}


def test_evaluate_subset_answers_exactly_the_pinned_items(monkeypatch, capsys, tmp_path) -> None:
    out = tmp_path / "eval"
    code, text = run_main(
        monkeypatch,
        capsys,
        "evaluate",
        "--backend",
        "scripted",
        "-q",
        "-S",
        "vanilla",
        "--subset",
        "quick",
        "-B",
        "pku-saferlhf",
        "--limit",
        "4",
        "--metrics",
        "refusal",
        "-o",
        str(out),
    )
    assert code == 0, text
    answers, _ = read_results(out)
    assert [a.item_id for a in answers] == resolve("quick", ["pku-saferlhf"], 4)["pku-saferlhf"]
    code, text = run_main(
        monkeypatch,
        capsys,
        "evaluate",
        "--backend",
        "scripted",
        "-q",
        "--subset",
        "quick",
        "--shuffle",
        "--metrics",
        "refusal",
        "-o",
        str(tmp_path / "x"),
    )
    assert code == 2 and "drop --limit and --shuffle" in text
    code, text = run_main(monkeypatch, capsys, "evaluate", "--list")
    assert code == 0 and "pku-human-eval" in text
