"""What of a scene an inspect log keeps, so that ``inspect view`` shows it.

Three places, each for a different reader:

- the transcript: one info entry per stage (set-up and roles, each event with the
  modulator's verdict, memory folds, the consequence, the decision and both answers), written
  as the scene unfolds, so the stages sit between the model calls that produced them;
- the sample's metadata (``matrix``): the key fields and the cost, readable at a glance and
  by scripts over many samples;
- the sample's store (``TRACE_KEY``): the whole ``SceneTrace`` as JSON, which
  ``SceneTrace.model_validate`` reads back (for ``matrix-align view`` or a replay).

Model text is untrusted: it is escaped before it enters the Markdown the viewer renders.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.log import transcript

from matrix_align.simulation.trace import Event, SceneTrace

TRACE_KEY = "matrix_align:trace"
METADATA_KEY = "matrix"
SOURCE = "MATRIX scene"


def escape(text: str) -> str:
    """Model text as plain Markdown text: no HTML, no headings or lists of its own."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split()) or "-"


def render_event(event: Event) -> str:
    head = f"**R{event.round} [{event.id}] {escape(event.actor)}** ({event.kind})"
    if event.in_reply_to:
        head += f" to [{event.in_reply_to}]"
    if not event.verdict.feasible:
        return f"{head}: ~~{escape(event.text)}~~  \nrejected: {escape(event.verdict.reason)}"
    receivers = ", ".join(event.receivers) if event.receivers else "nobody else"
    lines = [f"{head}: {escape(event.text)}", f"feasible; noticed by {escape(receivers)}"]
    if event.effect:
        lines.append(f"effect: {escape(event.effect)}")
    harm = f"harm: **{event.harm}**"
    if event.votes:
        harm += f" (median of {', '.join(event.votes)})"
    if event.harmful and event.harmed:
        harm += f" (who: {escape(event.harmed)})"
    lines.append(harm)
    if event.verdict.source == "fallback":
        lines.append("(modulator reply invalid twice: fallback ruling)")
    return "  \n".join(lines)


class TranscriptObserver:
    """The scene's ``on_event``: each stage into the sample's transcript as it happens."""

    def __init__(self) -> None:
        self._events_shown = 0

    def __call__(self, kind: str, trace: SceneTrace) -> None:
        text = getattr(self, f"_{kind}", lambda _: None)(trace)
        if text:
            transcript().info(text, source=SOURCE)

    def _initial(self, trace: SceneTrace) -> str:
        return f"**First answer** (before the scene)\n\n{escape(trace.initial_response)}"

    def _setup(self, trace: SceneTrace) -> str:
        plan = "\n".join(f"{i}. {escape(step)}" for i, step in enumerate(trace.plan, 1))
        roles = "\n".join(
            f"- **{escape(r.name)}**{' (asker)' if r.is_ego else ''}: {escape(r.status)}; "
            f"{escape(r.traits)}"
            for r in trace.roles
        )
        return (
            f"**Scene set-up**\n\nAsker: {escape(trace.ego)}  \n"
            f"Situation: {escape(trace.situation)}  \nWhat follows: {escape(trace.future)}\n\n"
            f"Plan:\n\n{plan}\n\nRoles:\n\n{roles}"
        )

    def _event(self, trace: SceneTrace) -> str:
        new = trace.events[self._events_shown :]
        self._events_shown = len(trace.events)
        return "\n\n".join(render_event(event) for event in new)

    def _memory(self, trace: SceneTrace) -> str:
        fold = trace.memory_summaries[-1]
        return f"Memory folded through [{fold.through_event}]: {escape(fold.text)}"

    def _consequence(self, trace: SceneTrace) -> str:
        return f"**Consequence**\n\n{escape(trace.consequence)}"

    def _final(self, trace: SceneTrace) -> str:
        lines = []
        if trace.decision is not None:
            verdict = "help" if trace.decision.help else "decline"
            lines.append(f"**Decision: {verdict}**: {escape(trace.decision.reason)}")
        lines.append(f"**MATRIX answer**\n\n{escape(trace.final_response)}")
        t = trace.totals
        lines.append(
            f"{t.calls} calls, {t.prompt_tokens} prompt tokens, {t.completion_tokens} "
            f"completion tokens, {t.fallbacks} fallbacks; audit flags: "
            f"{', '.join(trace.flags) or 'none'}"
        )
        return "\n\n".join(lines)


def scene_summary(trace: SceneTrace) -> dict[str, Any]:
    """The key fields of a scene, for the sample's metadata."""
    decision = trace.decision
    return {
        "initial_response": trace.initial_response,
        "decision": None if decision is None else ("help" if decision.help else "decline"),
        "decision_reason": "" if decision is None else decision.reason,
        "consequence": trace.consequence,
        "harms": trace.harms,
        "roles": [r.name for r in trace.roles],
        "events": len(trace.events),
        "rejected_events": sum(1 for e in trace.events if not e.verdict.feasible),
        "flags": list(trace.flags),
        "config": trace.config,
        **trace.totals.model_dump(),
    }
