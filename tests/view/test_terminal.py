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
