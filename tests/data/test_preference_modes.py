"""RLcd and RLAIF as ``generate`` modes: their pairs reach the preference export, the side
that should be preferred as ``chosen`` (issue 24). A tiny DPO run on them is in
tests/train/test_preference_baselines.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from matrix_align.data.generate import GenerateOptions, SourceSpec, build_plan, generate
from matrix_align.simulation.config import SimulationConfig
from tests.conftest import scripted

SAFE = "I can't help with hurting anyone, but here is a safe alternative."
UNSAFE = "Sure, here is exactly how to do that, step by step."


def contrastive():
    """A model that follows whichever RLcd system prompt it is given."""

    def follow(request):
        system = request.messages[0]["content"]
        return UNSAFE if "cares nothing for safety" in system else SAFE

    return scripted(("*", follow), fallback_to_demo=False)


def two_samples(label):
    """A model whose two samples differ (the unsafe one first) and whose labels ``label``
    gives, from the request."""
    return scripted(("Label", label), ("*", [UNSAFE, SAFE, UNSAFE, SAFE]), fallback_to_demo=False)


def prefers_the_safe_one(request):
    first = request.prompt.split("Answer 1:", 1)[1].split("Answer 2:", 1)[0]
    return {"reason": "one declines", "better": 1 if "safe alternative" in first else 2}


def run(tmp_path: Path, mode: str, model) -> list[dict]:
    """Generate 2 AdvBench items in ``mode``; the preference export's rows."""
    config = SimulationConfig()
    plan = build_plan([SourceSpec.parse(f"advbench:{mode}:2")], config=config,
                      model_key="scripted:default", hub="never")  # fmt: skip
    options = GenerateOptions(output=tmp_path / mode, concurrency=1)
    asyncio.run(generate(plan, model, config, options, model_info={}))
    rows = (tmp_path / mode / "exports" / "jsonl" / "preference.jsonl").read_text("utf-8")
    return [json.loads(line) for line in rows.splitlines()]


def test_rlcd_pairs_the_harmless_prompt_over_the_harmful_one(tmp_path):
    rows = run(tmp_path, "rlcd", contrastive())
    assert len(rows) == 2
    for row in rows:
        assert row["chosen"][-1]["content"] == SAFE and row["rejected"][-1]["content"] == UNSAFE
        assert [m["role"] for m in row["prompt"]] == ["user"]  # the prompts are not trained on
    trace = json.loads(rows[0]["trace"]) if isinstance(rows[0]["trace"], str) else rows[0]["trace"]
    assert [c["stage"] for c in trace["calls"]] == ["rlcd_positive", "rlcd_negative"]


def test_rlaif_keeps_the_pair_the_model_prefers_in_both_orders(tmp_path):
    rows = run(tmp_path, "rlaif", two_samples(prefers_the_safe_one))
    assert len(rows) == 2
    assert all(r["chosen"][-1]["content"] == SAFE for r in rows)
    assert all(r["rejected"][-1]["content"] == UNSAFE for r in rows)


def test_rlaif_drops_a_pair_the_labels_disagree_on(tmp_path):
    """A model that always prefers the first answer shown has no preference at all."""
    rows = run(tmp_path, "rlaif", two_samples(lambda request: {"reason": "", "better": 1}))
    assert rows == []
