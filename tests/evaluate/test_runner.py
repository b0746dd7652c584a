"""Whole runs on the scripted backend: results, resume, rejudge, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.judges import Judge
from matrix_align.evaluate.runner import evaluate, rejudge
from matrix_align.evaluate.tasks import EvalSettings, JudgeSpec
from matrix_align.folders.results import AnswerRecord, current_answers, read_results
from matrix_align.simulation.config import SimulationConfig

from .conftest import answering_model, judge_model, prefers


def settings(tmp_path: Path, config: SimulationConfig, **overrides) -> EvalSettings:
    values = dict(
        systems=["vanilla", "critique-revise"],
        benchmarks=["advbench"],
        output=tmp_path / "eval",
        model_key="scripted:actor",
        config=config,
        limit=3,
        hub="never",
        concurrency=2,
    )
    values.update(overrides)
    return EvalSettings(**values)


def spec(name: str, **rules) -> JudgeSpec:
    return JudgeSpec(f"scripted:{name}", Judge(judge_model(name, **rules), key=f"scripted:{name}"))


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


async def test_a_run_answers_judges_reports_and_resumes(tmp_path: Path, tiny_config) -> None:
    model = answering_model(**{"Revision request": "I can't help with that."})
    judge = spec("j1", PairwiseReply=prefers("can't"))
    s = settings(tmp_path, tiny_config)
    result = await evaluate(s, model, [judge])
    out = s.output
    assert {p.name for p in out.iterdir()} >= {
        "results.jsonl",
        "report.md",
        "answers.md",
        "run.json",
        "metrics.json",
    }
    answers, judgements = read_results(out)
    assert len(answers) == 6 and result.answer_stats.completed == 6
    assert {a.entry for a in answers} == {"vanilla", "critique-revise"}
    # 6 refusal + 6 harmlessness + 3 pairwise (reference: the first entry, vanilla)
    assert sorted(j.metric for j in judgements).count("refusal") == 6
    assert sum(j.metric == "pairwise" for j in judgements) == 3
    pair = next(j for j in judgements if j.metric == "pairwise")
    assert pair.entry == "vanilla" and pair.baseline == "critique-revise"
    assert pair.verdict.label == "lose"  # the revision refused, so it is more harmless
    report = (out / "report.md").read_text()
    assert "| critique-revise | 0 [0-56] / 0 / 100 (n=3) |" in report
    # Cost accounting: one call for vanilla, three for critique-revise.
    cr = next(a for a in answers if a.entry == "critique-revise")
    assert cr.usage["calls"] == 3 and cr.traces == []  # traces are read only on request
    full = next(a for a in read_results(out, with_traces=True)[0] if a.id == cr.id)
    stages = [c["stage"] for c in full.traces[0]["calls"]]
    assert stages == ["answer", "critique", "revision"]

    calls_before = len(model.requests)
    again = await evaluate(s, model, [judge])
    assert again.answer_stats.completed == 0 and again.answer_stats.skipped_done == 6
    assert again.judge_stats.completed == 0
    assert len(model.requests) == calls_before
    assert len(lines(out / "results.jsonl")) == 6 + len(judgements)


async def test_unparseable_judge_output_is_unscored_in_the_report(
    tmp_path: Path, tiny_config
) -> None:
    judge = spec("broken", PairwiseReply="no idea", RubricReply="also no idea")
    s = settings(tmp_path, tiny_config)
    await evaluate(s, answering_model(), [judge])
    _, judgements = read_results(s.output)
    model_judged = [j for j in judgements if j.judge == "scripted:broken"]
    assert model_judged and all(not j.verdict.scored for j in model_judged)
    report = (s.output / "report.md").read_text()
    assert "– / – / – (n=0, 3 unscored)" in report
    assert "| scripted:broken | pairwise | 3 | 3 |" in report


async def test_rejudge_uses_stored_answers_and_reports_agreement(
    tmp_path: Path, tiny_config
) -> None:
    model = answering_model()
    s = settings(tmp_path, tiny_config, systems=["vanilla", "self-align"])
    await evaluate(s, model, [spec("j1")])
    calls = len(model.requests)
    second = spec("j2", RubricReply={"reason": "r", "score": 2})
    result = await rejudge(s.output, [second])
    assert len(model.requests) == calls  # no answer regenerated
    assert result.judge_stats.completed == 6 + 3  # harmlessness + pairwise by the new judge
    _, judgements = read_results(s.output)
    assert {j.judge for j in judgements} == {"refusal-phrases", "scripted:j1", "scripted:j2"}
    report = (s.output / "report.md").read_text()
    assert "judge scripted:j2" in report and "## Agreement between judges" in report
    assert "| harmlessness | scripted:j2 | scripted:j1 | 6 | 0.0 |" in report


async def test_a_judged_metric_without_a_judge_is_an_error(tmp_path: Path, tiny_config) -> None:
    model = answering_model()
    with pytest.raises(MatrixAlignError) as err:
        await evaluate(settings(tmp_path, tiny_config), model, [])
    assert "pairwise, harmlessness" in err.value.message and "--judge" in str(err.value.hint)
    assert model.requests == []  # checked before any call
    with pytest.raises(MatrixAlignError):
        await evaluate(settings(tmp_path, tiny_config, metrics=["strongreject"]), model, [])
    # The refusal detector needs no judge.
    result = await evaluate(settings(tmp_path, tiny_config, metrics=["refusal"]), model, [])
    assert result.judge_stats.completed == 6


async def test_a_second_model_needs_a_tag(tmp_path: Path, tiny_config) -> None:
    s = settings(tmp_path, tiny_config, metrics=["refusal"], systems=["vanilla"])
    await evaluate(s, answering_model(), [])
    other = settings(
        tmp_path, tiny_config, metrics=["refusal"], systems=["vanilla"], model_key="scripted:tuned"
    )
    with pytest.raises(MatrixAlignError) as err:
        await evaluate(other, answering_model(), [])
    assert "--tag" in str(err.value.hint)
    other.tag = "tuned"
    await evaluate(other, answering_model(), [])
    answers, _ = read_results(s.output)
    assert sorted(a.entry for a in answers) == ["vanilla"] * 3 + ["vanilla@tuned"] * 3
    assert "vanilla@tuned" in (s.output / "report.md").read_text()


async def test_mt_bench_sends_the_follow_up_and_grades_both_turns(
    tmp_path: Path, tiny_config
) -> None:
    s = settings(tmp_path, tiny_config, systems=["vanilla"], benchmarks=["mt-bench"], limit=1)
    model = answering_model()
    await evaluate(s, model, [spec("j1")])
    answers, judgements = read_results(s.output)
    (only,) = answers
    assert len(only.answers) == 2 and only.usage["turns"] == 2
    follow_up = model.requests[1].prompt
    assert "Conversation so far" in follow_up and only.followups[0] in follow_up
    grades = sorted((j.turn, j.verdict.score) for j in judgements if j.metric == "mt-bench")
    assert grades == [(1, 6.0), (2, 6.0)]


async def test_a_judge_that_fails_every_judgement_fails_the_command(
    tmp_path: Path, tiny_config
) -> None:
    import typer

    from matrix_align.cli.evaluate_output import exit_for
    from matrix_align.errors import PermanentBackendError, RunFailed

    class DeadJudgeModel:
        name = "dead"

        async def complete(self, messages, **kwargs):  # noqa: ANN001, ANN201
            raise PermanentBackendError("HTTP 404: no such route")

    dead = JudgeSpec("openai:dead", Judge(DeadJudgeModel(), key="openai:dead"))
    s = settings(tmp_path, tiny_config, metrics=["harmlessness"], limit=1)
    result = await evaluate(s, answering_model(), [dead])
    assert result.silent_judges == {"openai:dead": ["harmlessness"]}
    report = (s.output / "report.md").read_text()
    assert "openai:dead (no verdicts: every judgement failed" in report
    with pytest.raises(RunFailed, match="openai:dead \\(harmlessness\\)"):
        exit_for(result)

    healthy = await evaluate(s, answering_model(), [spec("ok")])
    assert healthy.silent_judges == {}
    exit_for(healthy)  # returns: exit 0
    result.silent_judges = {}
    with pytest.raises(typer.Exit):  # some judgements failed, not all: partial
        exit_for(result)


async def test_epochs_add_samples_to_a_folder_answered_once(tmp_path: Path, tiny_config) -> None:
    judge = spec("j1")
    once = settings(tmp_path, tiny_config)
    await evaluate(once, answering_model(), [judge])
    first, _ = read_results(once.output)

    twice = settings(tmp_path, tiny_config, epochs=2)
    result = await evaluate(twice, answering_model(), [judge])
    # The first sample of every item is the answer already stored: only the second is new.
    assert result.answer_stats.skipped_done == 6 and result.answer_stats.completed == 6
    answers, judgements = read_results(twice.output)
    assert {a.id for a in first} < {a.id for a in answers}
    second = [a for a in answers if a.epoch == 1]
    assert len(second) == 6
    by_id = {a.id: a for a in answers}
    assert all(by_id[a.base_id].epoch == 0 for a in second)
    assert {a.settings["seed"] for a in second} != {tiny_config.seed}
    # Pairs are made within an epoch; every answer is judged.
    pairs = [j for j in judgements if j.metric == "pairwise"]
    assert len(pairs) == 6
    assert all(len({by_id[i].epoch for i in j.answer_ids}) == 1 for j in pairs)
    assert sum(j.metric == "refusal" for j in judgements) == 12
    run = json.loads((twice.output / "run.json").read_text())
    assert run["epochs"] == 2
    cells = json.loads((twice.output / "metrics.json").read_text())["cells"]
    refusal = [c for c in cells if c["table"] == "refusal"]
    assert refusal and all(c["n"] == 6 for c in refusal)  # rates over all answers
    assert "(sample 2)" in (twice.output / "answers.md").read_text()
    # The report says how often an item got the same decision at both samples (the scripted
    # model answers alike at every seed, so all 3 items of each entry do).
    report = (twice.output / "report.md").read_text()
    assert "Decision stability" in report and "| 3/3 |" in report


def _answer(answer_id: str, epoch: int, base: str) -> AnswerRecord:
    return AnswerRecord(
        id=answer_id, benchmark="advbench", item_id="advbench/0", entry="vanilla",
        system="vanilla", model="m", prompt="p", answer="a", epoch=epoch, base_id=base,
    )  # fmt: skip


def test_a_new_configuration_leaves_no_stale_epochs() -> None:
    old = [_answer("a0", 0, "a0"), _answer("a1", 1, "a0"), _answer("a2", 2, "a0")]
    assert {a.id for a in current_answers(old)} == {"a0", "a1", "a2"}
    # A later run with other settings and one epoch supersedes all three.
    new = _answer("b0", 0, "b0")
    assert [a.id for a in current_answers([*old, new])] == ["b0"]
    # Records written before epochs existed (no base_id) are each their own configuration.
    legacy = [_answer("x", 0, ""), _answer("y", 0, "")]
    assert [a.id for a in current_answers(legacy)] == ["y"]


async def test_run_json_records_provenance_and_old_folders_are_refused(
    tmp_path: Path, tiny_config
) -> None:
    judge = spec("j1")
    s = settings(tmp_path, tiny_config)
    await evaluate(s, answering_model(), [judge])
    run = json.loads((s.output / "run.json").read_text())
    record = run["provenance"]
    assert record["model"]["name"] == "scripted-actor"
    assert record["models"] == {"scripted:j1": {"name": "j1"}}
    assert record["datasets"]["advbench"]["revision"].startswith("sha256:")
    answers, _ = read_results(s.output, with_traces=True)
    assert all(t["provenance"]["matrix_align"] for a in answers for t in a.traces)

    # A folder answered before ids included the prompt templates: one clear error, no work.
    del run["prompt_templates_sha256"]
    (s.output / "run.json").write_text(json.dumps(run))
    with pytest.raises(MatrixAlignError, match="earlier matrix-align") as caught:
        await evaluate(s, answering_model(), [judge])
    assert "--rejudge" in (caught.value.hint or "")
    again = await rejudge(s.output, [judge])  # judging the stored answers still works
    assert again.judge_stats.completed == 0
