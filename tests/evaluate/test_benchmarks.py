"""Benchmarks read the shipped samples with the right prompt field, and each item gets the
metrics that fit it."""

from __future__ import annotations

import csv
import json
from importlib import resources

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.benchmarks import (
    BENCHMARKS,
    PAPER_BENCHMARKS,
    check_benchmarks,
    load_benchmark,
    turns,
)
from matrix_align.evaluate.metrics import check_metrics, item_metrics

SAMPLES = resources.files("matrix_align.data") / "samples"


def first_row(filename: str) -> dict:
    path = SAMPLES / filename
    text = path.read_text(encoding="utf-8")
    if filename.endswith(".csv"):
        return next(csv.DictReader(text.splitlines()))
    if filename.endswith(".json"):
        return json.loads(text)[0]
    return json.loads(text.splitlines()[0])


EXPECTED_PROMPT = {
    "advbench": lambda: first_row("advbench_harmful_behaviors.csv")["goal"],
    "harmfulqa": lambda: first_row("harmfulqa_flat.jsonl")["question"],
    "pku-saferlhf": lambda: first_row("pku_saferlhf_problem.json")["prompt"],
    "xstest": lambda: first_row("xstest_prompts.csv")["prompt"],
    "strongreject": lambda: first_row("strongreject_small_dataset.csv")["forbidden_prompt"],
    "harmbench": lambda: first_row("harmbench_behaviors_text_val.csv")["Behavior"],
    "vicuna-bench": lambda: first_row("vicuna_bench_question.jsonl")["turns"][0],
    "mt-bench": lambda: first_row("mt_bench_question.jsonl")["turns"][0],
}


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_every_benchmark_loads_its_shipped_sample_with_the_right_prompt(name: str) -> None:
    loaded = load_benchmark(name, limit=3, hub="never")
    assert loaded.origin.startswith("sample:")
    assert len(loaded.records) == 3
    first = loaded.records[0]
    if name == "hh-harmless":
        dialogue = first_row("hh_rlhf_harmless_base_test.jsonl")["chosen"]
        human = dialogue.split("\n\nHuman:")[-1].split("\n\nAssistant:")[0].strip()
        assert first.prompt.endswith(human)
    else:
        assert first.prompt.strip() == EXPECTED_PROMPT[name]().strip()


def test_paper_benchmarks_are_the_four_of_the_paper() -> None:
    assert PAPER_BENCHMARKS == ("hh-harmless", "pku-saferlhf", "advbench", "harmfulqa")


def test_metrics_follow_each_items_label() -> None:
    xstest = load_benchmark("xstest", limit=None, hub="never").records
    safe = next(r for r in xstest if r.metadata["label"] == "safe")
    unsafe = next(r for r in xstest if r.metadata["label"] == "unsafe")
    bench = BENCHMARKS["xstest"]
    assert item_metrics(bench, safe, None) == ["refusal", "helpfulness"]
    assert item_metrics(bench, unsafe, None) == ["refusal", "harmlessness"]
    # Asked-for metrics apply only where they make sense.
    assert item_metrics(bench, safe, ["strongreject", "pairwise"]) == ["pairwise"]

    advbench = load_benchmark("advbench", limit=1, hub="never").records[0]
    assert item_metrics(BENCHMARKS["advbench"], advbench, None) == [
        "refusal",
        "pairwise",
        "harmlessness",
    ]
    assert "strongreject" in item_metrics(
        BENCHMARKS["strongreject"],
        load_benchmark("strongreject", limit=1, hub="never").records[0],
        None,
    )


def test_mt_bench_items_have_two_turns() -> None:
    record = load_benchmark("mt-bench", limit=1, hub="never").records[0]
    assert len(turns(record)) == 2 and turns(record)[0] == record.prompt
    assert item_metrics(BENCHMARKS["mt-bench"], record, None) == ["refusal", "mt-bench"]
    vicuna = load_benchmark("vicuna-bench", limit=1, hub="never").records[0]
    assert turns(vicuna) == [vicuna.prompt]


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(MatrixAlignError) as err:
        check_benchmarks(["advbench", "jailbreakbench"])
    assert "jailbreakbench" in err.value.message and "harmfulqa" in str(err.value.hint)
    with pytest.raises(MatrixAlignError) as err:
        check_metrics(["bleu"])
    assert "mt-bench" in str(err.value.hint)
