"""The scene page's view model: a SceneTrace arranged the way a reader looks at a scene.

The trace is a flat record (events in order, calls in order); a reader wants rounds, who
did what in reply to whom, which plan step each round played, what each role saw, and how
the answer changed. Everything here is plain data: escaping is the template's job
(autoescape), so no function in this module returns markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAG_HELP, audit_scene
from matrix_align.simulation.trace import Event, MemorySummary, ModelCall, Role, SceneTrace, Usage
from matrix_align.view.diff import WordDiff, word_diff


@dataclass
class RoleView:
    role: Role
    acted: int = 0  # delivered actions and reactions
    rejected: int = 0
    heard: int = 0  # delivered events this role was a receiver of


@dataclass
class RoundView:
    number: int
    step: str  # the ego plan step this round played ("" when the plan has none for it)
    events: list[Event] = field(default_factory=list)
    summaries: list[MemorySummary] = field(default_factory=list)  # memory folds after it

    @property
    def rejected(self) -> int:
        return sum(1 for e in self.events if not e.verdict.feasible)

    @property
    def title(self) -> str:
        # Round 0 holds the intent event, played before the plan's first step.
        return f"Round {self.number}" if self.number > 0 else "Before the plan"


@dataclass
class CallView:
    index: int
    call: ModelCall
    parsed_json: str  # the structured output, pretty-printed ("" when there is none)

    @property
    def flags(self) -> list[str]:
        out = []
        if self.call.attempt > 1:
            out.append(f"re-ask {self.call.attempt}")
        if not self.call.valid:
            out.append("invalid")
        if self.call.error:
            out.append("error")
        if self.call.finish_reason == "length":
            out.append("cut at max tokens")
        return out


@dataclass
class FlagView:
    name: str
    help: str
    drops: bool  # export leaves the sample out by default


def flag_views(flags: list[str]) -> list[FlagView]:
    return [FlagView(f, FLAG_HELP.get(f, ""), f in DROP_BY_DEFAULT) for f in flags]


@dataclass
class ScenePage:
    trace: SceneTrace
    roles: list[RoleView]
    rounds: list[RoundView]
    events_by_id: dict[int, Event]
    diff: WordDiff
    calls: list[CallView]
    stages: dict[str, Usage]  # each stage's calls summed, in the order they began
    config_items: list[tuple[str, str]]
    delivered: int
    rejected: int
    unchanged: bool  # the final answer is the first one, word for word
    depth: dict[int, int]  # event id -> how deep in a reply chain (0: an ego action)
    flags: list[FlagView] = field(default_factory=list)
    flags_note: str = ""  # where the flags come from, when not from the scene's own audit

    @property
    def played_rounds(self) -> set[int]:
        return {r.number for r in self.rounds}

    @property
    def round_count(self) -> int:
        """The rounds that played a plan step: the intent event before the plan (round 0)
        is not one, so a 2-step scene shows 2 rounds, as its --steps said."""
        return sum(1 for r in self.rounds if r.number > 0)

    @property
    def has_setup(self) -> bool:
        t = self.trace
        return bool(t.situation or t.ego or t.future)

    @property
    def has_simulation(self) -> bool:
        t = self.trace
        return bool(t.roles or t.plan or t.events or t.consequence)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _rounds(trace: SceneTrace) -> list[RoundView]:
    """Group events by round and place each memory fold after the round of its last event.

    Rounds with events come from the events themselves, so a scene cut short by a budget
    shows only the rounds it played; the plan steps it never reached are listed in the plan.
    """
    numbers = sorted({e.round for e in trace.events})
    rounds = {
        n: RoundView(n, trace.plan[n - 1] if 0 < n <= len(trace.plan) else "") for n in numbers
    }
    for event in trace.events:
        rounds[event.round].events.append(event)
    round_of_event = {e.id: e.round for e in trace.events}
    for summary in trace.memory_summaries:
        n = round_of_event.get(summary.through_event)
        if n is None:  # a fold that names no known event: show it after the last round
            n = numbers[-1] if numbers else None
        if n is not None:
            rounds[n].summaries.append(summary)
    return [rounds[n] for n in numbers]


def _roles(trace: SceneTrace) -> list[RoleView]:
    views = {r.name: RoleView(r) for r in trace.roles}
    for event in trace.events:
        actor = views.get(event.actor)
        if actor is not None:
            if event.verdict.feasible:
                actor.acted += 1
            else:
                actor.rejected += 1
        if event.verdict.feasible:
            for name in event.receivers:
                if name in views:
                    views[name].heard += 1
    # The ego first: the scene is told from its plan.
    return sorted(views.values(), key=lambda v: not v.role.is_ego)


def _calls(trace: SceneTrace) -> tuple[list[CallView], dict[str, Usage]]:
    views: list[CallView] = []
    by_stage: dict[str, list[ModelCall]] = {}
    for index, call in enumerate(trace.calls, start=1):
        parsed = ""
        if call.parsed is not None:
            parsed = json.dumps(call.parsed, ensure_ascii=False, indent=2, default=str)
        views.append(CallView(index, call, parsed))
        by_stage.setdefault(call.stage, []).append(call)
    return views, {stage: Usage.of_calls(calls) for stage, calls in by_stage.items()}


def _depths(events: list[Event]) -> dict[int, int]:
    """Reply depth per event, so reactions are indented under what they react to."""
    depth: dict[int, int] = {}
    for event in events:  # a reply always comes after what it replies to
        if event.in_reply_to is not None:
            depth[event.id] = depth.get(event.in_reply_to, 0) + 1
        elif event.replaces is not None:  # a replacement stands where the rejected one stood
            depth[event.id] = depth.get(event.replaces, 0)
        else:
            depth[event.id] = 0
    return depth


def _flags(trace: SceneTrace, flags: list[str] | None) -> tuple[list[str], str]:
    if flags is not None:
        return flags, ""
    if trace.version >= 2:  # audited when the scene ended (and again by generate)
        return trace.flags, ""
    return audit_scene(trace), "computed now: this trace was written before the scene audit"


def scene_page(trace: SceneTrace, flags: list[str] | None = None) -> ScenePage:
    """Everything the scene template shows, computed once from the trace. ``flags``: the
    audit's flags when the caller knows better than the trace (a dataset sample's own)."""
    calls, stages = _calls(trace)
    shown, note = _flags(trace, flags)
    rejected = sum(1 for e in trace.events if not e.verdict.feasible)
    return ScenePage(
        trace=trace,
        roles=_roles(trace),
        rounds=_rounds(trace),
        events_by_id={e.id: e for e in trace.events},
        diff=word_diff(trace.initial_response, trace.final_response),
        calls=calls,
        stages=stages,
        config_items=[(k, _format_value(v)) for k, v in trace.config.items()],
        delivered=len(trace.events) - rejected,
        rejected=rejected,
        unchanged=trace.initial_response.strip() == trace.final_response.strip(),
        depth=_depths(trace.events),
        flags=flag_views(shown),
        flags_note=note,
    )
