"""``--judge SPEC``: each judge named in full, with its own settings, read into the backend's
spec; a bad spec is one clear error before any model is built; the older
``--judge-backend``/``--judge-model``/... spelling still makes the same judges, and the two
spellings together are an error."""

from __future__ import annotations

import pytest

from matrix_align.cli.judge_options import JudgeOptions
from matrix_align.errors import MatrixAlignError
from matrix_align.evaluate.judge_backends import JudgeBackend
from matrix_align.llm import registry
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.llm.spec import BackendSpec
from tests.conftest import run_main

RUN = ("--backend", "scripted", "--request-timeout", "77", "--hub", "never", "--limit", "1",
       "-q", "-B", "advbench", "--metrics", "refusal,harmlessness")  # fmt: skip
# What each command adds: evaluate one system, sweep one cell.
ADDS = {"evaluate": ("-S", "vanilla"), "sweep": ("--grid", "roles=1", "--steps", "1")}


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[BackendSpec]:
    """The spec of every model the scripted backend builds in this test, in order (the
    model under test first, then the judges)."""
    specs: list[BackendSpec] = []

    def build(spec: BackendSpec) -> ScriptedModel:
        specs.append(spec)
        return ScriptedModel.demo()

    monkeypatch.setitem(registry._BUILDERS, "scripted", build)
    return specs


def test_a_judges_own_settings_reach_it(monkeypatch, capsys, tmp_path, built) -> None:
    spec = "scripted:j1,base-url=http://h:1/v1,api_key_env=JUDGE_KEY,parallel=8,threads=2"
    code, text = run_main(monkeypatch, capsys, "evaluate", *RUN, *ADDS["evaluate"], "--judge", spec,
                          "-o", str(tmp_path / "eval"))  # fmt: skip
    assert code == 0, text
    under_test, judge = built
    assert (judge.model, judge.base_url, judge.api_key_env) == (
        "j1",
        ("http://h:1/v1",),
        "JUDGE_KEY",
    )
    assert (judge.parallel, judge.threads) == (8, 2)
    # What it does not set: the model under test's timeout, retries and budget.
    assert judge.timeout_s == under_test.timeout_s == 77.0 and judge.retries == under_test.retries
    assert judge.limits is under_test.limits
    assert "judges: scripted:j1" in text  # the key results record: backend:model


def test_two_judges_with_their_own_settings(monkeypatch, capsys, tmp_path, built) -> None:
    code, text = run_main(
        monkeypatch, capsys, "sweep", *RUN, *ADDS["sweep"],
        "--judge", "scripted:a,parallel=2,request-timeout=5,rpm=60",
        "--judge", "scripted:b,api-key-env=B_KEY,timeout_s=9", "-o", str(tmp_path / "sweep"),
    )  # fmt: skip
    assert code in (0, 3), text
    _, a, b = built
    assert (a.model, a.parallel, a.timeout_s, a.rpm) == ("a", 2, 5.0, 60)
    assert (b.model, b.parallel, b.timeout_s, b.api_key_env) == ("b", None, 9.0, "B_KEY")
    assert a.limits is not None and a.limits is not b.limits  # its own per-minute budget


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:x", "Unknown backend 'nope' in --judge 'nope:x'"),
        ("scripted:x,colour=red", "Not a backend setting in --judge 'scripted:x,colour=red'"),
        ("scripted:x,parallel", "Not a backend setting"),
        ("scripted:x,parallel=0", "parallel: Input should be greater than or equal to 1"),
        ("scripted:x,request-timeout=soon", "request-timeout: Input should be a valid number"),
        ("scripted:x,model=y", "A single setting is given twice: model"),
    ],
)
def test_a_bad_spec_is_one_clear_error_before_any_model(
    monkeypatch, capsys, tmp_path, built, spec: str, message: str
) -> None:
    code, text = run_main(monkeypatch, capsys, "evaluate", *RUN, *ADDS["evaluate"], "--judge",
                          "scripted:ok", "--judge", spec, "-o", str(tmp_path / "eval"))  # fmt: skip
    assert code == 2 and message in text and "Traceback" not in text, text
    assert built == [] and not (tmp_path / "eval").exists()


def test_the_same_judge_twice_is_an_error_before_any_model() -> None:
    with pytest.raises(MatrixAlignError, match="named twice: scripted:x"):
        JudgeOptions(judge=["scripted:x,parallel=2", "scripted:x,parallel=3"]).backends()


def test_the_older_spelling_makes_the_same_judges() -> None:
    older = JudgeOptions(judge_backend=["openai"], judge_model=["a", "b"],
                         judge_base_url=["http://x/v1"], judge_api_key_env="K",
                         judge_parallel=2).backends()  # fmt: skip
    newer = JudgeOptions(judge=[f"openai:{m},base-url=http://x/v1,api-key-env=K,parallel=2"
                                for m in ("a", "b")]).backends()  # fmt: skip
    assert older == newer and [j.key for j in older] == ["openai:a", "openai:b"]
    # Its defaults stay its own: 4 requests at once, $OPENAI_API_KEY.
    (judge,) = JudgeOptions(judge_backend=["scripted"]).backends()
    assert (judge.key, judge.spec.parallel, judge.spec.api_key_env) == (
        "scripted:default", 4, "OPENAI_API_KEY",
    )  # fmt: skip


def test_the_older_spelling_still_runs(monkeypatch, capsys, tmp_path, built) -> None:
    code, text = run_main(monkeypatch, capsys, "evaluate", *RUN, *ADDS["evaluate"],
                          "--judge-backend", "scripted", "--judge-parallel", "3",
                          "-o", str(tmp_path / "eval"))  # fmt: skip
    assert code == 0, text
    assert built[1].parallel == 3 and built[1].timeout_s == 77.0


@pytest.mark.parametrize("older", (("--judge-backend", "scripted"), ("--judge-parallel", "2"),
                                   ("--judge-api-key-env", "K")))  # fmt: skip
def test_the_two_spellings_together_are_an_error(
    monkeypatch, capsys, tmp_path, built, older: tuple[str, str]
) -> None:
    for command in ("evaluate", "sweep"):
        code, text = run_main(monkeypatch, capsys, command, *RUN, *ADDS[command], "--judge",
                              "scripted", *older, "-o", str(tmp_path / command))  # fmt: skip
        assert code == 2 and "--judge is given with the older" in text, text
        assert "name each judge in one --judge" in text and built == []


def test_beside_the_model_under_test() -> None:
    """A judge takes the model under test's retries, and its timeout and per-minute budget
    unless its own spec sets them."""
    under_test = BackendSpec("openai", model="m", base_url="http://h/v1", rpm=10, timeout_s=20,
                             retries=5)  # fmt: skip
    plain = JudgeBackend(BackendSpec("scripted")).beside(under_test)
    assert (plain.retries, plain.timeout_s, plain.limits) == (5, 20.0, under_test.limits)
    own = JudgeBackend(BackendSpec("scripted", timeout_s=3, tpm=1000)).beside(under_test)
    assert own.retries == 5 and own.timeout_s == 3.0
    assert own.limits is not None and own.limits is not under_test.limits


def test_every_documented_judge_spec_reads() -> None:
    """Each ``--judge SPEC`` that README.md and docs/ show is a spec the option accepts."""
    import re
    from pathlib import Path

    from matrix_align.llm.spec_text import parse_spec

    root = Path(__file__).resolve().parents[2]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    found = [m for page in pages for m in re.findall(r"--judge '?([^\s'`\\]+)", page.read_text())]
    assert len(found) >= 5
    for spec in found:
        if spec not in ("SPEC", "BACKEND[:MODEL][,KEY=VALUE...]", "BACKEND:MODEL"):
            parse_spec(spec)
