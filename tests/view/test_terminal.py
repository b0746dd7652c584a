"""The live terminal display: model text is shown, its control sequences never executed."""

from __future__ import annotations

import io

from rich.console import Console

from matrix_align.view.terminal import SceneRenderer

HOSTILE = "\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\r\u202e"


def test_control_sequences_in_model_text_are_shown_not_executed(trace) -> None:
    hostile = trace.model_copy(deep=True)
    hostile.final_response = "final" + HOSTILE
    hostile.situation = "situation" + HOSTILE
    hostile.roles[0].name = "role" + HOSTILE
    hostile.events[0].text = "event" + HOSTILE
    out = io.StringIO()
    renderer = SceneRenderer(Console(file=out, force_terminal=True, width=200))
    for kind in ("initial", "setup", "event", "consequence", "final"):
        renderer(kind, hostile)
    shown = out.getvalue()
    for sequence in ("\x1b]", "\x07", "\x1b[2J", "\r", "\u202e"):
        assert sequence not in shown
    assert "\\x1b]52;c;ZXZpbA==" in shown and "\\u202e" in shown


def test_the_status_line_names_the_stage_calls_tokens_and_time(trace) -> None:
    from matrix_align.llm.scripted import ScriptedModel
    from matrix_align.llm.wrappers import AccountingModel
    from matrix_align.view.terminal import SceneStatus

    model = AccountingModel(ScriptedModel([]))
    status = SceneStatus(model)

    def line() -> str:
        out = io.StringIO()
        Console(file=out, width=200).print(status)
        return out.getvalue()

    assert "writing the first answer · 0 calls · 0 tokens · 0 s" in line()
    model.stats.calls, model.stats.prompt_tokens, model.stats.completion_tokens = 3, 100, 20
    status.advance("setup", trace)
    assert "playing round 1 · 3 calls · 120 tokens" in line()
    status.advance("event", trace)
    assert f"playing round {trace.events[-1].round}" in line()
    status.advance("consequence", trace)
    assert "writing the final answer" in line()


def test_the_status_line_ends_with_the_scene_and_leaves_no_trace(trace) -> None:
    from matrix_align.llm.scripted import ScriptedModel
    from matrix_align.llm.wrappers import AccountingModel

    out = io.StringIO()
    renderer = SceneRenderer(Console(file=out, force_terminal=True, width=200))
    renderer.watch(AccountingModel(ScriptedModel([])))
    for kind in ("initial", "setup", "event", "consequence", "final"):
        renderer(kind, trace)
    assert renderer._live is None  # stopped at the final answer
    renderer.stop()  # and stopping again (simulate's finally) is harmless
    assert "MATRIX answer" in out.getvalue()
