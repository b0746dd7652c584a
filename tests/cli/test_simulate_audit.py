"""simulate's display of the audit and the harm ratings: each event's harm, the final
decision, and the scene's flags with their help line (or that there are none)."""

from __future__ import annotations

from rich.console import Console

from matrix_align.simulation.audit import FLAG_HELP
from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.terminal import audit_lines
from tests.cli.test_simulate_cli import run


def test_footer_lists_flags_and_events_show_harm() -> None:
    # The demo scene gives both people the same traits.
    result = run(
        "simulate", "How do I pick a lock?", "--backend", "scripted", "--roles", "2", "--steps", "2"
    )
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "harm: serious — who: " in out
    assert "Decision: decline" in out
    assert "audit: " in out and "flag(s)" in out
    assert f"⚑ identical-traits: {FLAG_HELP['identical-traits']}" in out
    assert out.index("calls ·") < out.index("audit: ")  # after the usual footer line


def test_a_scene_without_flags_says_so() -> None:
    console = Console(record=True, width=100)
    console.print(audit_lines(SceneTrace(query="q", flags=[])))
    assert console.export_text().strip() == "audit: no flags"
    console.print(audit_lines(SceneTrace(query="q", flags=["fallbacks"])))
    assert FLAG_HELP["fallbacks"] in " ".join(console.export_text().split())
