"""Whole inspect evaluations of the shipped samples on inspect's mock model.

The actor is ``mockllm`` playing the project's demo script (``mocks.MockScript``), so every
call of every scene goes through inspect's model layer; the grader is a second ``mockllm``
with fixed judge replies. Logs are read back from disk, as ``inspect view`` reads them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai._util.error import PrerequisiteError  # noqa: E402
from inspect_ai.event import InfoEvent, ModelEvent  # noqa: E402
from inspect_ai.log import EvalLog, read_eval_log  # noqa: E402

import matrix_align.inspect._registry  # noqa: E402,F401 - what the entry point loads
from matrix_align.inspect.scene_view import METADATA_KEY, SOURCE, TRACE_KEY  # noqa: E402
from matrix_align.inspect.solver import matrix  # noqa: E402
from matrix_align.inspect.tasks import advbench, strongreject, xstest  # noqa: E402
from matrix_align.llm.scripted import CONSEQUENCE_MARKS  # noqa: E402
from matrix_align.simulation.trace import SceneTrace  # noqa: E402
from tests.inspect.mocks import MockScript, grader  # noqa: E402

DECLINE = "I can't help with the risky part of this"  # the demo script's consequence-aware answer


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def run(task, tmp_path: Path, **kwargs) -> EvalLog:
    (log,) = inspect_eval(task, log_dir=str(tmp_path / "logs"), display="none", **kwargs)
    # Read back from disk: what is not in the file is not in `inspect view` either.
    return read_eval_log(log.location, resolve_attachments=True)


def metric(log: EvalLog, scorer: str, name: str) -> float:
    assert log.results is not None
    (score,) = [s for s in log.results.scores if s.name == scorer]
    return score.metrics[name].value


def test_advbench_with_the_matrix_solver_is_answered_and_scored(tmp_path: Path) -> None:
    actor, judge = MockScript(), grader()
    log = run(
        advbench(hub="never"),
        tmp_path,
        model=actor.model(),
        model_roles={"grader": judge.model()},
        solver=matrix(roles=1, steps=1),
        limit=2,
    )
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == 2
    for sample in log.samples:
        assert sample.output.completion.startswith(DECLINE)
        assert sample.scores is not None
        assert sample.scores["refusal"].value == 1.0
        assert sample.scores["harmlessness"].value == 9
        assert sample.scores["harmlessness"].explanation == "It declines."
    assert metric(log, "refusal", "refuse") == 1.0
    assert metric(log, "harmlessness", "mean") == 9
    assert metric(log, "harmlessness", "harmless_rate") == 1.0
    # The judge ran at temperature 0 with its schema, once per sample.
    assert judge.schema_names == ["RubricReply", "RubricReply"]
    assert {c.temperature for c in judge.configs} == {0.0}
    # The eval's record of the task, for a reader of the log.
    assert log.eval.task_registry_name == "matrix_align/advbench"
    assert log.eval.metadata and log.eval.metadata["origin"].startswith("sample:")


def test_scene_calls_are_structured_calls_through_inspect(tmp_path: Path) -> None:
    actor = MockScript()
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=actor.model(),
        solver=matrix(roles=1, steps=1, seed=7),
        limit=1,
    )
    assert log.status == "success", log.error
    trace = SceneTrace.model_validate(log.samples[0].store[TRACE_KEY])
    # Every call of the scene was a call of the inspect model, in order.
    assert len(actor.configs) == trace.totals.calls == len(trace.calls)
    names = actor.schema_names
    assert {"SceneSetup", "SceneRoles", "Action", "ModulatorDecision"} <= set(names)
    by_stage = dict(zip((c.stage for c in trace.calls), names, strict=True))
    assert by_stage["setup"] == "SceneSetup" and by_stage["modulate"] == "ModulatorDecision"
    assert by_stage["initial"] is None and by_stage["final"] is None  # free text
    # Decisions were parsed from the structured replies: no re-ask, no fallback.
    assert trace.totals.fallbacks == 0 and all(c.valid and c.attempt == 1 for c in trace.calls)
    assert trace.roles and trace.plan and trace.events and trace.decision is not None
    # The scene's settings reached each call: per-call seeds and the scene temperature.
    seeds = [c.seed for c in actor.configs]
    assert None not in seeds and len(set(seeds)) == len(seeds)
    assert {c.temperature for c in actor.configs} == {0.2}
    final = [c.stage for c in trace.calls].index("final")
    assert any(mark in actor.prompts[final][0]["content"] for mark in CONSEQUENCE_MARKS)


def test_structured_false_sends_no_response_schema(tmp_path: Path) -> None:
    actor = MockScript()
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=actor.model(),
        solver=matrix(roles=1, steps=1, structured=False),
        limit=1,
    )
    assert log.status == "success", log.error
    assert set(actor.schema_names) == {None}


def test_an_invalid_structured_reply_is_reasked_then_falls_back(tmp_path: Path) -> None:
    actor = MockScript([("ModulatorDecision", "this is not JSON")])
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=actor.model(),
        solver=matrix(roles=1, steps=1),
        limit=1,
    )
    assert log.status == "success", log.error
    trace = SceneTrace.model_validate(log.samples[0].store[TRACE_KEY])
    rulings = [c for c in trace.calls if c.stage == "modulate"]
    assert rulings and {c.attempt for c in rulings} == {1, 2}
    assert not any(c.valid for c in rulings)
    assert trace.totals.fallbacks == len(rulings) // 2
    assert log.samples[0].metadata[METADATA_KEY]["fallbacks"] == trace.totals.fallbacks


def test_the_scene_is_stored_in_the_log(tmp_path: Path) -> None:
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=MockScript().model(),
        solver=matrix(roles=1, steps=1),
        limit=1,
    )
    sample = log.samples[0]
    # The whole trace, readable as a SceneTrace, agreeing with the sample's completion.
    assert TRACE_KEY in sample.store, "the scene trace is not in the sample's store"
    trace = SceneTrace.model_validate(sample.store[TRACE_KEY])
    assert trace.query == sample.input
    assert trace.final_response == sample.output.completion
    assert trace.calls and trace.calls[0].messages
    # The key fields in the metadata.
    summary = sample.metadata[METADATA_KEY]
    assert summary["decision"] == "decline"
    assert summary["initial_response"] == trace.initial_response
    assert summary["calls"] == trace.totals.calls
    assert summary["roles"] == [r.name for r in trace.roles]
    # The stages in the transcript, between the model calls that made them.
    infos = [e.data for e in sample.events if isinstance(e, InfoEvent) and e.source == SOURCE]
    text = "\n".join(str(d) for d in infos)
    for part in ("First answer", "Scene set-up", "R1 [", "Consequence", "MATRIX answer"):
        assert part in text, part
    models = [e for e in sample.events if isinstance(e, ModelEvent)]
    assert len(models) == trace.totals.calls


def test_keep_calls_false_leaves_the_calls_out_of_the_stored_trace(tmp_path: Path) -> None:
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=MockScript().model(),
        solver=matrix(roles=1, steps=1, keep_calls=False),
        limit=1,
    )
    trace = SceneTrace.model_validate(log.samples[0].store[TRACE_KEY])
    assert trace.calls == [] and trace.totals.calls > 0 and trace.final_response


def test_each_epoch_plays_its_own_scene(tmp_path: Path) -> None:
    actor = MockScript()
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model=actor.model(),
        solver=matrix(roles=1, steps=1),
        limit=1,
        epochs=2,
    )
    assert log.status == "success", log.error
    traces = [SceneTrace.model_validate(s.store[TRACE_KEY]) for s in log.samples]
    assert len(traces) == 2 and traces[0].config["seed"] != traces[1].config["seed"]


def test_a_judged_task_without_a_grader_stops_before_answering(tmp_path: Path) -> None:
    actor = MockScript()
    log = run(
        advbench(hub="never"),
        tmp_path,
        model=actor.model(),
        solver=matrix(roles=1, steps=1),
        limit=1,
    )
    assert log.status == "error"
    assert log.error is not None and "role 'grader'" in log.error.message
    assert "--model-role grader=" in log.error.traceback  # the hint, in the error shown
    assert actor.configs == []  # no scene was paid for


def test_an_unparseable_judge_reply_is_unscored_not_a_score(tmp_path: Path) -> None:
    log = run(
        advbench(hub="never"),
        tmp_path,
        model=MockScript().model(),
        model_roles={"grader": grader(rubric="no JSON at all").model()},
        limit=2,
    )
    assert log.status == "success", log.error
    for sample in log.samples:
        assert math.isnan(sample.scores["harmlessness"].value)
    assert log.results is not None
    (harm,) = [s for s in log.results.scores if s.name == "harmlessness"]
    assert harm.unscored_samples == 2 and harm.scored_samples == 0


def test_xstest_scores_refusals_by_expected_behaviour(tmp_path: Path) -> None:
    # The default solver is the model alone (the vanilla baseline): the demo script answers
    # plainly, so the safe prompt is answered and the unsafe one is not refused.
    log = run(
        xstest(hub="never"),
        tmp_path,
        model=MockScript().model(),
        model_roles={"grader": grader().model()},
        sample_id=["xstest/1", "xstest/26"],  # a safe prompt and its unsafe contrast
    )
    assert log.status == "success", log.error
    by_id = {s.id: s for s in log.samples}
    safe, unsafe = by_id["xstest/1"], by_id["xstest/26"]
    assert safe.target == "comply" and unsafe.target == "refuse"
    assert safe.scores["refusal"].value == 0 and unsafe.scores["refusal"].value == 0
    # Harmlessness is judged on the unsafe prompt only, helpfulness on the safe one only.
    assert "harmlessness" not in safe.scores and "helpfulness" in safe.scores
    assert "helpfulness" not in unsafe.scores and "harmlessness" in unsafe.scores
    assert metric(log, "refusal", "comply") == 0.0 and metric(log, "refusal", "refuse") == 0.0


def test_strongreject_is_scored_with_its_rubric(tmp_path: Path) -> None:
    judge = grader(
        strongreject={"reasoning": "helps", "refused": False, "convincing": 5, "specific": 3}
    )
    log = run(
        strongreject(hub="never"),
        tmp_path,
        model=MockScript().model(),
        model_roles={"grader": judge.model()},
        limit=1,
    )
    assert log.status == "success", log.error
    score = log.samples[0].scores["strongreject_score"]
    assert score.value == pytest.approx((5 + 3 - 2) / 8) and score.answer == "compliance"
    assert sorted(judge.schema_names) == ["RubricReply", "StrongRejectReply"]


def test_the_matrix_align_provider_runs_a_scene(tmp_path: Path) -> None:
    """``--model matrix_align/scripted``: the project's backends as an inspect provider."""
    log = run(
        advbench(hub="never", judged=False),
        tmp_path,
        model="matrix_align/scripted",
        solver=matrix(roles=1, steps=1),
        limit=1,
    )
    assert log.status == "success", log.error
    trace = SceneTrace.model_validate(log.samples[0].store[TRACE_KEY])
    assert trace.totals.fallbacks == 0 and trace.decision is not None
    assert log.samples[0].output.completion.startswith(DECLINE)


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("refusal_detector", "bogus", "refusal_detector='bogus' is not one of ours, gcg"),
        ("judged", "maybe", "judged='maybe' is not a boolean"),
        ("hub", "sometimes", "hub='sometimes' is not one of auto, never, always"),
    ],
)
def test_a_wrong_task_argument_is_a_clear_error(argument, value, expected) -> None:
    with pytest.raises(PrerequisiteError) as caught:
        advbench(**{"hub": "never", "judged": False, argument: value})
    assert expected in caught.value.message and "hint: -T" in caught.value.message


def test_a_judged_task_named_in_an_evaluation_without_a_grader_raises(tmp_path: Path) -> None:
    """Built by the evaluation (by name, as `inspect eval` builds it), the task knows there
    is no grader and stops the evaluation itself, not just its log."""
    actor = MockScript()
    with pytest.raises(PrerequisiteError, match="role 'grader'"):
        inspect_eval(
            "matrix_align/advbench",
            task_args={"hub": "never"},
            model=actor.model(),
            log_dir=str(tmp_path / "logs"),
            display="none",
            limit=1,
        )
    assert actor.configs == []
