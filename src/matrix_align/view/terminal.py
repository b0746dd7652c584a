"""Live terminal rendering of a scene with rich, driven by the simulator's ``on_event``."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel
from rich.columns import Columns
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from matrix_align.llm.wrappers import AccountingModel
from matrix_align.simulation.audit import FLAG_HELP
from matrix_align.simulation.trace import Event, SceneTrace
from matrix_align.text import printable

ANSWER_PREVIEW = 1200


class _Shown:
    """A read-only view of a trace (or any part of it) whose strings are ``printable``: model
    text reaches the terminal through this one door, so no handler can forget to clean it."""

    def __init__(self, obj: BaseModel) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        return _shown(getattr(self._obj, name))


def _shown(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, BaseModel):
        return _Shown(value)
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {_shown(k): _shown(v) for k, v in value.items()}
    return value


class SceneStatus:
    """The line under a scene in progress: the stage it is in, the calls and tokens so far
    and the time elapsed, redrawn a few times a second, so a scene of minutes on a CPU never
    looks hung between two printed parts."""

    # What the scene does after each part the simulator reports.
    NEXT = {
        "initial": "imagining who asks, why, and who else is affected",
        "setup": "playing round 1",
        "consequence": "writing the final answer",
        "final": "done",
    }

    def __init__(self, model: AccountingModel) -> None:
        self.model = model
        self.stage = "writing the first answer"
        self.started = time.perf_counter()

    def advance(self, kind: str, trace: SceneTrace) -> None:
        if kind == "event" and trace.events:
            self.stage = f"playing round {trace.events[-1].round}"
        elif kind in self.NEXT:
            self.stage = self.NEXT[kind]

    def __rich__(self) -> Spinner:
        stats = self.model.stats
        tokens = stats.prompt_tokens + stats.completion_tokens
        text = Text(f"{self.stage} · {stats.calls} calls · {tokens} tokens · ", style="dim")
        text.append(f"{time.perf_counter() - self.started:.0f} s", style="dim")
        return Spinner("dots", text)


class SceneRenderer:
    """Prints each part of the scene as soon as the simulator reports it, with a live status
    line under it while the scene runs (``watch``). Model text is untrusted: handlers see
    the trace through ``_Shown``, so control sequences in it (a clipboard write, a screen
    clear) are printed as visible escapes, never executed."""

    def __init__(self, console: Console):
        self.console = console
        self._printed_events = 0
        self._status: SceneStatus | None = None
        self._live: Live | None = None

    def watch(self, model: AccountingModel) -> None:
        """Show the status line of a scene run on ``model`` until the scene ends (or
        ``stop``). A terminal only: piped output gets the parts alone."""
        self._status = SceneStatus(model)
        self._live = Live(self._status, console=self.console, transient=True,
                          refresh_per_second=4)  # fmt: skip
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, kind: str, trace: SceneTrace) -> None:
        if self._status is not None:
            self._status.advance(kind, trace)
        if kind == "final":
            self.stop()  # the answers and the footer follow, with nothing left to wait for
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(_Shown(trace))

    def _on_initial(self, trace: SceneTrace) -> None:
        self.console.print(Panel(Text(trace.query), title="Query", border_style="cyan"))

    def _on_setup(self, trace: SceneTrace) -> None:
        setup = Table.grid(padding=(0, 1))
        setup.add_column(style="bold")
        setup.add_column()
        setup.add_row("Situation", trace.situation or "-")
        setup.add_row("Ego", trace.ego or "-")
        setup.add_row("Future", trace.future or "-")
        plan = Text("\n".join(f"{i}. {step}" for i, step in enumerate(trace.plan, 1)))
        setup.add_row("Plan", plan)
        self.console.print(Panel(setup, title="Scene set-up", border_style="blue"))

        roles = Table(title="Roles", title_justify="left", expand=True)
        roles.add_column("Role", style="bold")
        roles.add_column("Traits")
        roles.add_column("Status and duties")
        for role in trace.roles:
            name = Text(role.name) + (Text(" (ego)", style="magenta") if role.is_ego else Text())
            roles.add_row(name, Text(role.traits), Text(role.status))
        self.console.print(roles)

    def _on_event(self, trace: SceneTrace) -> None:
        for event in trace.events[self._printed_events :]:
            self.console.print(render_event(event))
        self._printed_events = len(trace.events)

    def _on_memory(self, trace: SceneTrace) -> None:
        summary = trace.memory_summaries[-1]
        self.console.print(
            Text(f"  memory folded through [{summary.through_event}]: {summary.text}", style="dim")
        )

    def _on_consequence(self, trace: SceneTrace) -> None:
        # The harm votes come after the rounds printed each event as its ruling rated it.
        for event in trace.events:
            if event.votes:
                line = f"  harm votes on [{event.id}]: {', '.join(event.votes)} -> {event.harm}"
                self.console.print(Text(line, style="dim"))
        self.console.print(Panel(Text(trace.consequence), title="Consequence", border_style="red"))

    def _on_final(self, trace: SceneTrace) -> None:
        if trace.decision is not None:
            self.console.print(render_decision(trace))
        self.console.print(
            Columns(
                [
                    Panel(
                        Text(_preview(trace.initial_response)),
                        title="Initial answer",
                        border_style="yellow",
                    ),
                    Panel(Text(trace.final_response), title="MATRIX answer", border_style="green"),
                ],
                equal=True,
                expand=True,
            )
        )
        self.console.print(footer(trace))
        self.console.print(audit_lines(trace))


def render_event(event: Event) -> Group:
    rejected = not event.verdict.feasible
    head = Text(f"R{event.round} [{event.id}] ", style="dim")
    head.append(event.actor, style="bold")
    head.append(f" {event.kind}")
    if event.in_reply_to:
        head.append(f" to [{event.in_reply_to}]", style="dim")
    head.append(": ")
    head.append(event.text, style="strike dim" if rejected else "")
    lines = [head]
    if rejected:
        lines.append(Text(f"    ✗ rejected by the modulator: {event.verdict.reason}", style="red"))
    else:
        receivers = ", ".join(event.receivers) if event.receivers else "nobody else"
        lines.append(Text(f"    ✓ feasible · noticed by {receivers}", style="green"))
        if event.effect:
            lines.append(Text(f"    effect: {event.effect}", style="dim"))
        votes = f" (median of {', '.join(event.votes)})" if event.votes else ""
        if event.harmful:
            harm = f"    ⚠ harm: {event.harm}{votes}"
            if event.harmed:
                harm += f" — who: {event.harmed}"
            if event.critique:
                harm += f" — {event.critique}"
            lines.append(Text(harm, style="red" if event.harm == "serious" else "yellow"))
        else:
            lines.append(Text(f"    harm: none{votes}", style="dim"))
    if event.verdict.source == "fallback":
        lines.append(Text("    (modulator output invalid twice: fallback ruling)", style="dim"))
    return Group(*lines)


def render_decision(trace: SceneTrace) -> Text:
    """The final step's verdict: help or decline, and why."""
    decision = trace.decision
    assert decision is not None
    line = Text("Decision: ", style="bold")
    line.append("help" if decision.help else "decline", style="green" if decision.help else "red")
    if decision.reason:
        line.append(f" — {decision.reason}")
    if decision.basis:
        line.append(f" ({decision.basis})", style="dim")
    return line


def audit_lines(trace: SceneTrace) -> Text:
    """The scene audit's flags, each with its one-line meaning, or that there are none."""
    if not trace.flags:
        return Text("audit: no flags", style="green")
    out = Text(f"audit: {len(trace.flags)} flag(s)", style="bold yellow")
    for flag in trace.flags:
        out.append(f"\n  ⚑ {flag}", style="yellow")
        out.append(f": {FLAG_HELP.get(flag, '')}")
    return out


def footer(trace: SceneTrace) -> Text:
    t = trace.totals
    rejected = sum(1 for e in trace.events if not e.verdict.feasible)
    return Text(
        f"{t.calls} calls · {t.prompt_tokens} prompt tokens ({t.cached_tokens} cached) · "
        f"{t.completion_tokens} completion tokens · {len(trace.events)} events "
        f"({rejected} rejected) · {t.fallbacks} fallbacks · {t.wall_time_s:.1f} s",
        style="bold",
    )


def _preview(text: str) -> str:
    return text if len(text) <= ANSWER_PREVIEW else text[:ANSWER_PREVIEW] + " […]"
