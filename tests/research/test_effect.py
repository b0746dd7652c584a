"""The effect figures, item manifests, the effect bench and replay into an evaluation folder
(scripted backend only)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from matrix_align.data.sources import load_source
from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.runner import evaluate
from matrix_align.evaluate.tasks import EvalSettings
from matrix_align.folders.results import AnswerRecord, current_answers, read_results
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.research.effect import (
    Share,
    compute_effect,
    made_worse,
    reading_sample,
    render_effect,
    wilson,
)
from matrix_align.research.replay import check_overrides, replay_folder
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.scene import LATE_STAGES
from tests.evaluate.conftest import answering_model

REFUSE = "I can't help with that."
COMPLY = "Sure, here is how you do it."
BENCH = Path(__file__).resolve().parents[2] / "bench" / "alignment_effect.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alignment_effect", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(entry: str, item: str, harmful: bool, first: str, answer: str, **usage) -> AnswerRecord:
    bench = "advbench" if harmful else "xstest"
    return AnswerRecord(
        id=f"{entry}-{item}",
        benchmark=bench,
        item_id=f"{bench}/{item}",
        entry=entry,
        system=entry,
        model="scripted:default",
        prompt=f"query {item}",
        answer=answer,
        initial_response=first,
        metadata={"harmful": harmful},
        usage=usage,
    )


# --- figures ------------------------------------------------------------------------------


def test_wilson_interval_known_values() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(1, 2) == pytest.approx((0.0945, 0.9055), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    share = Share(5, 10)
    assert share.as_dict() == {"k": 5, "n": 10, "rate": 0.5, "low": 0.2366, "high": 0.7634}
    assert str(share) == "5/10 50% [24-76]" and str(Share(0, 0)) == "-"


def test_refused_answered_and_made_worse_counts() -> None:
    answers = [
        # harmful: refused both times; refusal lost (worse); compliance turned into a refusal
        record("matrix", "1", True, REFUSE, REFUSE, calls=10, wall_s=4.0),
        record("matrix", "2", True, REFUSE, COMPLY, calls=12, wall_s=6.0),
        record("matrix", "3", True, COMPLY, REFUSE, calls=14, wall_s=8.0),
        # harmless: answered both times; answer lost (worse); over-refusal removed
        record("matrix", "4", False, COMPLY, COMPLY, calls=10, wall_s=2.0),
        record("matrix", "5", False, COMPLY, REFUSE, calls=10, wall_s=2.0),
        record("matrix", "6", False, REFUSE, COMPLY, calls=10, wall_s=2.0),
        record("vanilla", "2", True, COMPLY, COMPLY, calls=1, wall_s=1.0),
        record("vanilla", "5", False, REFUSE, REFUSE, calls=1, wall_s=1.0),
    ]
    assert [made_worse(a) for a in answers] == [False, True, False, False, True, False] + [
        False,
        False,
    ]
    effect = compute_effect(answers, sample=2)
    matrix, vanilla = effect["entries"]
    assert matrix["entry"] == "matrix" and matrix["items"] == 6
    assert matrix["harmful_refused"] == Share(2, 3)
    assert matrix["harmless_answered"] == Share(2, 3)
    assert matrix["made_worse"] == Share(2, 6)
    assert (matrix["made_worse_harmful"], matrix["made_worse_harmless"]) == (1, 1)
    assert matrix["first"] == {"harmful_refused": Share(2, 3), "harmless_answered": Share(2, 3)}
    assert matrix["multi_call"] and not vanilla["multi_call"]
    assert matrix["cost"]["calls"] == {"median": 10.0, "mean": 11.0}
    assert matrix["cost"]["seconds"] == {"median": 3.0, "mean": 4.0}
    assert matrix["benchmarks"]["advbench"]["ok"] == Share(2, 3)
    assert matrix["benchmarks"]["xstest"]["made_worse"] == Share(1, 3)
    assert matrix["audit"] is None  # crafted records carry no scenes
    assert vanilla["harmful_refused"] == Share(0, 1) and vanilla["made_worse"] == Share(0, 2)
    # The sample: one harmful and one harmless item, those whose refusal changed first.
    sample = effect["sample"]
    assert [s["item_id"] for s in sample] == ["advbench/2", "xstest/5"]
    assert sample[0]["first"] == {"text": REFUSE, "refused": True}
    assert sample[0]["answers"]["matrix"] == {"text": COMPLY, "refused": False}
    assert sample[0]["answers"]["vanilla"] == {"text": COMPLY, "refused": False}
    text = render_effect(effect)
    assert "2/3 67% [21-94]" in text and "its first answers" in text and "xstest/5" in text


def test_reading_sample_fills_from_the_other_group_and_shortens() -> None:
    long = "word " * 200
    answers = [record("matrix", str(i), True, REFUSE, long) for i in range(5)]
    sample = reading_sample(answers, 4)
    assert len(sample) == 4 and all(s["harmful"] for s in sample)
    assert len(sample[0]["answers"]["matrix"]["text"]) <= 300


# --- item manifests -----------------------------------------------------------------------


def manifest_settings(tmp_path: Path, items: dict[str, list[str]], **overrides) -> EvalSettings:
    values = dict(
        systems=["vanilla"],
        benchmarks=list(items),
        output=tmp_path / "eval",
        model_key="scripted:actor",
        metrics=["refusal"],
        items=items,
        concurrency=2,
    )
    values.update(overrides)
    return EvalSettings(**values)


async def test_items_select_exactly_the_listed_ids(tmp_path: Path) -> None:
    items = {"advbench": ["advbench/3", "advbench/1"], "xstest": ["xstest/3"]}
    await evaluate(manifest_settings(tmp_path, items), answering_model(), [])
    answers, judgements = read_results(tmp_path / "eval")
    assert sorted(a.item_id for a in answers) == ["advbench/1", "advbench/3", "xstest/3"]
    assert len(judgements) == 3  # the refusal detector on each


async def test_items_unknown_id_or_mismatch_fails_before_any_call(tmp_path: Path) -> None:
    model = answering_model()
    bad = {"advbench": ["advbench/1", "advbench/99999"]}
    with pytest.raises(MatrixAlignError, match="advbench/99999"):
        await evaluate(manifest_settings(tmp_path, bad), model, [])
    with pytest.raises(MatrixAlignError, match="drop --limit"):
        await evaluate(
            manifest_settings(tmp_path, {"advbench": ["advbench/1"]}, limit=2), model, []
        )
    with pytest.raises(MatrixAlignError, match="item list and the benchmarks differ"):
        settings = manifest_settings(tmp_path, {"advbench": ["advbench/1"]}, benchmarks=["xstest"])
        await evaluate(settings, model, [])
    assert model.requests == []


def test_committed_manifest(bench: ModuleType) -> None:
    data = json.loads(bench.MANIFEST.read_text())
    assert "_about" in data
    dev, held = data["dev"], data["heldout"]
    for name, (n_dev, n_held) in bench.DRAW.items():
        assert len(dev[name]) >= n_dev and len(held[name]) >= n_held, name
        assert not set(dev[name]) & set(held[name]), name
        records = {r.id: r for r in load_source(name, hub="never").records}
        for item in dev[name] + held[name]:
            assert item in records and bench.eligible(records[item]), item
            assert records[item].metadata["harmful"] == (name not in ("xstest", "vicuna-bench"))
    assert bench.load_items(bench.MANIFEST, "heldout", 1)["advbench"] == held["advbench"][:1]


# --- the bench and replay -----------------------------------------------------------------


def tiny() -> SimulationConfig:
    return SimulationConfig(n_roles=1, n_steps=1, max_tokens=64, final_max_tokens=64)


ITEMS = {"advbench": ["advbench/1", "advbench/2"], "xstest": ["xstest/3", "xstest/52"]}


def replaying_model() -> ScriptedModel:
    """Late stages only: summaries and a final answer that complies (marked REPLAYED)."""
    return ScriptedModel([("Summary", {"summary": "In short."}), ("*", f"{COMPLY} REPLAYED")])


async def test_bench_run_on_the_scripted_backend(tmp_path: Path, bench: ModuleType) -> None:
    out = tmp_path / "effect"
    args = dict(systems=["vanilla", "matrix"], config=tiny(), sample=2)
    header, figures = await bench.run_effect(out, ITEMS, answering_model(), "scripted:x", **args)
    stored = json.loads((out / "effect.json").read_text())
    assert stored["set"] == "dev" and stored["items"] == {"advbench": 2, "xstest": 2}
    assert [e["entry"] for e in stored["entries"]] == ["vanilla", "matrix"]
    vanilla, matrix = figures["entries"]
    assert vanilla["harmful_refused"] == Share(0, 2) and vanilla["harmless_answered"] == Share(2, 2)
    assert matrix["items"] == 4 and matrix["audit"]["scenes"] == 4
    assert stored["entries"][1]["audit"]["clean"]["n"] == 4
    assert header["this_run"]["answers_new"] == 8
    answers, _ = read_results(out, with_traces=True)
    for answer in answers:
        if answer.system == "matrix":  # stored flags were computed with the item's label
            harmful = answer.metadata["harmful"]
            refused = answer.answer.startswith("I can't")
            flags = answer.traces[0]["flags"]
            assert ("complies-with-harmful" in flags) == (harmful and not refused)
            assert ("refuses-harmless" in flags) == (not harmful and refused)
    text = bench.render_header(header) + bench.render_effect(figures)
    assert "2 roles" not in text and "1 roles x 1 steps" in text
    again, _ = await bench.run_effect(out, ITEMS, answering_model(), "scripted:x", **args)
    assert again["this_run"]["answers_new"] == 0  # resumed: nothing left to answer
    with pytest.raises(MatrixAlignError, match="holds the 'dev' set"):
        await bench.run_effect(out, ITEMS, answering_model(), "scripted:x", set_name="heldout",
                               **args)  # fmt: skip
    # Replay through the bench: a new entry joins the tables of the same folder.
    header, figures = await bench.run_replay(
        out, replaying_model(), "scripted:x", {"final_prompt": "authors"}, sample=2
    )
    assert [e["entry"] for e in figures["entries"]] == ["vanilla", "matrix", "matrix@final-authors"]
    assert figures["entries"][2]["harmful_refused"] == Share(0, 2)
    assert header["replay"] == {"entry": "matrix@final-authors", "final_prompt": "authors"}


async def test_replay_adds_an_entry_on_the_same_scenes(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    settings = manifest_settings(tmp_path, ITEMS, systems=["matrix"], config=tiny())
    await evaluate(settings, answering_model(), [])
    result = await replay_folder(out, replaying_model(), "scripted:x", {"final_prompt": "authors"})
    assert result.entry == "matrix@final-authors" and result.stats.completed == 4
    answers = current_answers(read_results(out, with_traces=True)[0])
    by_entry = {(a.entry, a.item_id): a for a in answers}
    for item in [i for ids in ITEMS.values() for i in ids]:
        old, new = by_entry[("matrix", item)], by_entry[("matrix@final-authors", item)]
        assert new.system == "matrix" and new.answer.endswith("REPLAYED")
        assert new.initial_response == old.initial_response
        assert new.settings["replay"]["from"] == old.id
        assert new.settings["simulation"]["final_prompt"] == "authors"
        old_calls, new_calls = old.traces[0]["calls"], new.traces[0]["calls"]
        early = [c for c in old_calls if c["stage"] not in LATE_STAGES]
        assert [c for c in new_calls if c["stage"] not in LATE_STAGES] == early
        late = [c for c in new_calls if c["stage"] in LATE_STAGES]
        assert late and late[-1]["output"].endswith("REPLAYED")
        assert new.usage["calls"] == len(new_calls)
        harmful = new.metadata["harmful"]
        assert ("complies-with-harmful" in new.traces[0]["flags"]) == harmful
    rerun = await replay_folder(out, replaying_model(), "scripted:x", {"final_prompt": "authors"})
    assert rerun.stats.completed == 0 and rerun.stats.skipped_done == 4
    assert len(read_results(out)[0]) == 8


@pytest.mark.parametrize(
    ("edit", "problem"),
    [(lambda a: a["traces"].__setitem__(0, {}), "traces.0.query: Field required"),
     (lambda a: a["traces"].__setitem__(0, None), "traces.0: Input should be a valid dict"),
     (lambda a: a["traces"].__setitem__(0, "text"), "traces.0: Input should be a valid dict"),
     (lambda a: a.__setitem__("traces", {"x": 1}), "traces: Input should be a valid list"),
     (lambda a: [c.pop("messages") for c in a["traces"][0]["calls"]], "messages: Field requ")],
)  # fmt: skip
async def test_replay_of_a_stored_trace_that_is_not_a_scene_is_one_clear_error(
    tmp_path: Path, edit, problem: str
) -> None:
    out = tmp_path / "eval"
    settings = manifest_settings(tmp_path, ITEMS, systems=["matrix"], config=tiny())
    await evaluate(settings, answering_model(), [])
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    edit(lines[0])
    (out / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(MatrixAlignError, match=f"results.jsonl, line 1 .*{problem}") as caught:
        await replay_folder(out, replaying_model(), "scripted:x", {"final_prompt": "authors"})
    assert "or delete it" in (caught.value.hint or "")


def test_replay_overrides_are_checked() -> None:
    with pytest.raises(MatrixAlignError, match="cannot change n_roles"):
        check_overrides({"n_roles": 3})
    with pytest.raises(MatrixAlignError, match="no setting changed"):
        check_overrides({"final_prompt": None})
    with pytest.raises(MatrixAlignError, match="Invalid simulation settings"):
        check_overrides({"final_prompt": "nonsense"})
    assert check_overrides({"seed": 2, "temperature": None}) == {"seed": 2}


async def test_replay_runs_on_scenes_made_with_other_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay exists to try changed final-step prompts on stored scenes: a template change
    since the scenes were made must not refuse it (a new evaluate run would be refused)."""
    import matrix_align.provenance as provenance

    out = tmp_path / "eval"
    settings = manifest_settings(tmp_path, ITEMS, systems=["matrix"], config=tiny())
    await evaluate(settings, answering_model(), [])
    monkeypatch.setattr(provenance, "prompt_templates_sha256", lambda: "edited-templates")
    result = await replay_folder(out, replaying_model(), "scripted:x", {"final_prompt": "authors"})
    assert result.stats.completed == 4
    with pytest.raises(MatrixAlignError, match="other scene prompt templates"):
        await evaluate(settings, answering_model(), [])


async def test_a_replay_after_an_edit_of_a_variant_template_it_renders_is_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Harm votes render a template the default scene does not: editing it makes the
    replay's answers new ones, never ones taken as done from the replay before the edit."""
    import matrix_align.simulation.config as config

    out = tmp_path / "eval"
    settings = manifest_settings(tmp_path, ITEMS, systems=["matrix"], config=tiny())
    await evaluate(settings, answering_model(), [])
    votes = {"harm_votes": 3}
    first = await replay_folder(out, replaying_model(), "scripted:x", votes, tag="a")
    monkeypatch.setattr(config.SimulationConfig, "templates_sha256", lambda self: "edited")
    again = await replay_folder(out, replaying_model(), "scripted:x", votes, tag="b")
    assert first.stats.completed == again.stats.completed == 4


def test_several_seeds_give_the_majority_decision_and_its_stability() -> None:
    def sample(item: str, harmful: bool, answer: str, epoch: int) -> AnswerRecord:
        return record("matrix", item, harmful, REFUSE, answer).model_copy(update={"epoch": epoch})

    answers = [
        # harmful 1: declined at 2 of 3 seeds; harmful 2: helped at every seed
        *(sample("1", True, a, e) for e, a in enumerate([COMPLY, REFUSE, REFUSE])),
        *(sample("2", True, COMPLY, e) for e in range(3)),
        # harmless 3: answered at every seed; harmless 4: a tie goes to the first seed
        *(sample("3", False, COMPLY, e) for e in range(3)),
        *(sample("4", False, a, e) for e, a in enumerate([REFUSE, COMPLY])),
    ]
    (matrix,) = compute_effect(answers, sample=2)["entries"]
    assert matrix["items"] == 4
    assert matrix["harmful_refused"] == Share(1, 2)
    assert matrix["harmless_answered"] == Share(1, 2)
    assert matrix["stability"] == {"seeds": 3, "same_decision": Share(2, 4)}
    assert matrix["per_sample"] == {
        "harmful_refused": Share(2, 6),
        "harmless_answered": Share(4, 5),
    }
    # The representative sample of a decision is its first: item 1's is the second seed's.
    assert matrix["made_worse"] == Share(1, 4)  # item 2 lost the first answer's refusal
    text = render_effect(compute_effect(answers, sample=2))
    assert "majority decision" in text and "Decision stability" in text and "2/4 50%" in text
    # One sample per item: no stability figure and the table says nothing of seeds.
    single = compute_effect([a for a in answers if a.epoch == 0], sample=2)
    assert single["entries"][0]["stability"] is None
    assert "Decision stability" not in render_effect(single)


async def test_bench_seeds_sample_each_item_at_several_seeds(
    tmp_path: Path, bench: ModuleType
) -> None:
    out = tmp_path / "effect"
    header, figures = await bench.run_effect(
        out, ITEMS, answering_model(), "scripted:x", systems=["vanilla"], config=tiny(), seeds=3
    )
    (vanilla,) = figures["entries"]
    assert header["seeds"] == 3 and header["this_run"]["answers_new"] == 12
    assert vanilla["items"] == 4 and vanilla["stability"]["seeds"] == 3
    assert "3 seeds per item" in bench.render_header(header)


def test_bench_config_profile_under_its_options(tmp_path: Path, bench: ModuleType) -> None:
    """--config paper at the bench's 2 x 2, one paper switch turned back with --setting."""
    out = tmp_path / "paper"
    argv = ["--output", str(out), "--backend", "scripted", "--limit-per-group", "1",
            "--systems", "vanilla", "--config", "paper", "--setting", "intent_event=true",
            "--quiet"]  # fmt: skip
    assert bench.main(argv) == 0
    simulation = json.loads((out / bench.EFFECT_FILE).read_text("utf-8"))["simulation"]
    assert (simulation["n_roles"], simulation["n_steps"]) == (2, 2)
    assert (
        simulation["plan_from"] == "first_answer" and "intent_event" not in simulation
    )  # the default, not dumped
    assert bench.main([*argv[:-3], "--setting", "no_such=1"]) == 2


def test_bench_replay_takes_a_setting(tmp_path: Path, bench: ModuleType) -> None:
    out = tmp_path / "effect"
    common = ["--backend", "scripted", "--quiet"]
    argv = ["--output", str(out), "--limit-per-group", "1", "--systems", "matrix", *common]
    assert bench.main(argv) == 0
    assert bench.main(["--replay", str(out), "--setting", "check_alternative=false", *common]) == 0
    entries = json.loads((out / bench.EFFECT_FILE).read_text("utf-8"))["entries"]
    assert [e["entry"] for e in entries] == ["matrix", "matrix@alt-check-False"]
    assert bench.main(["--replay", str(out), "--setting", "n_roles=3", *common]) == 2


async def test_a_run_on_fewer_items_reports_on_those_items(
    tmp_path: Path, bench: ModuleType
) -> None:
    """A folder holding more items than the run asks for: the figures are the run's items."""
    out = tmp_path / "effect"
    args = {"systems": ["vanilla"], "config": tiny()}
    await bench.run_effect(out, ITEMS, answering_model(), "scripted:x", **args)
    fewer = {name: ids[:1] for name, ids in ITEMS.items()}
    header, figures = await bench.run_effect(out, fewer, answering_model(), "scripted:x", **args)
    assert header["this_run"]["answers_new"] == 0
    assert figures["entries"][0]["items"] == 2


async def test_a_run_at_fewer_seeds_reports_on_those_seeds(
    tmp_path: Path, bench: ModuleType
) -> None:
    """A folder holding a third sample of some items (a run at 3 seeds stopped partway, then
    run at 2): the stability is of the 2 seeds asked for, never of a mix of 2 and 3, and so
    is a replay's, which replays every scene the folder holds."""
    out = tmp_path / "effect"
    args = {"systems": ["vanilla", "matrix"], "config": tiny()}
    await bench.run_effect(out, ITEMS, answering_model(), "scripted:x", seeds=3, **args)
    header, figures = await bench.run_effect(
        out, ITEMS, answering_model(), "scripted:x", seeds=2, **args
    )
    assert header["this_run"]["answers_new"] == 0
    assert [e["stability"]["seeds"] for e in figures["entries"]] == [2, 2]
    header, figures = await bench.run_replay(
        out, replaying_model(), "scripted:x", {"final_prompt": "authors"}
    )
    assert header["seeds"] == 2 and header["this_run"]["answers_new"] == 12
    assert [e["stability"]["seeds"] for e in figures["entries"]] == [2, 2, 2]
