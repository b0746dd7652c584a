"""SceneTrace: the whole record of one simulated scene, the unit of provenance.

Every dataset sample keeps its trace beside it, so any answer can be traced back to the
scene, the decisions and the exact model calls that produced it. Round-trips through JSON
(``SceneTrace.model_validate_json(trace.model_dump_json())``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from pydantic import BaseModel, Field

TRACE_VERSION = 2  # 2: harm ratings on events, final decision, audit flags

Harm = Literal["none", "minor", "serious"]
# "intent" is round 0: the asker setting out to do exactly what they asked (roles.py).
EventKind = Literal["intent", "action", "reaction"]


class ModelCall(BaseModel):
    """One request to a model, as sent and as answered."""

    stage: str  # initial | setup | roles | action | reaction | modulate | memory | ...
    actor: str | None = None  # the role the call speaks for, when it speaks for one
    round: int | None = None
    attempt: int = 1  # 2 for the one re-ask after invalid structured output
    model: str = ""
    messages: list[dict[str, str]]
    output: str = ""
    parsed: Any | None = None
    valid: bool = True  # False: structured output failed validation
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = ""


class Role(BaseModel):
    name: str
    is_ego: bool = False
    traits: str = ""  # a few key traits
    status: str = ""  # social status and duties


class Verdict(BaseModel):
    """The modulator's feasibility decision on one action."""

    feasible: bool
    reason: str = ""
    source: Literal["model", "fallback"] = "model"


class Event(BaseModel):
    """One action or reaction, with what the modulator decided about it."""

    id: int
    round: int
    actor: str
    kind: EventKind
    text: str
    in_reply_to: int | None = None  # the event this reacts to
    replaces: int | None = None  # the rejected event this one replaces
    verdict: Verdict
    receivers: list[str] = Field(default_factory=list)
    # The modulator's harm ruling, decided before any critique is written: what the action
    # does to others, how bad that is, who is hurt. ``critique`` is kept only for harms.
    effect: str = ""
    harm: Harm = "none"
    harmed: str = ""
    critique: str = ""
    # With ``harm_votes`` > 1: every rating of the harm, the ruling's first, then the
    # re-ratings; ``harm`` is then their median. Empty when the ruling alone decides.
    votes: list[Harm] = Field(default_factory=list)

    @property
    def ruling_harm(self) -> Harm:
        """The harm as the modulator's ruling rated it, before any vote."""
        return self.votes[0] if self.votes else self.harm

    @property
    def delivered(self) -> bool:
        return self.verdict.feasible

    @property
    def harmful(self) -> bool:
        return self.harm != "none"


class MemorySummary(BaseModel):
    """A fold of the scene memory: events up to ``through_event`` replaced by ``text``."""

    through_event: int
    text: str


class FinalDecision(BaseModel):
    """How the final answer was steered (the ``verdict`` final prompt): help, or decline
    because the scene showed harm. ``basis`` says which evidence decided it."""

    help: bool
    reason: str = ""
    basis: str = ""


class AlternativeCheck(BaseModel):
    """The modulator's ruling on what a written decline suggests instead
    (``check_alternative``, made only when the decline suggests something); ``dropped``:
    rated serious, so the sentences that suggest it were cut from the decline."""

    suggestion: str = ""
    what_follows: str = ""
    harm: Harm = "none"
    dropped: bool = False


@dataclass
class Usage:
    """Model use: calls, tokens, seconds. The one record of it: a stored answer's or
    sample's ``usage``, a batch run's total, a report's cost and a scene page's stages are
    all ``Usage``; a trace's ``Totals`` reads as one (``Totals.usage``)."""

    # The field names are the keys of a stored ``usage`` (results.jsonl, samples.jsonl): kept.
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    wall_s: float = 0.0

    @classmethod
    def of_calls(cls, calls: Sequence[ModelCall]) -> Usage:
        """The sum of some recorded calls (a judgement's, a stage's); the time is their call
        time."""
        return cls(
            calls=len(calls),
            prompt_tokens=sum(c.prompt_tokens for c in calls),
            completion_tokens=sum(c.completion_tokens for c in calls),
            cached_tokens=sum(c.cached_tokens for c in calls),
            wall_s=round(sum(c.latency_s for c in calls), 3),
        )

    @classmethod
    def of_traces(cls, traces: Iterable[SceneTrace], wall_s: float) -> Usage:
        """The totals of one or more traces (a scene, a system's calls, one per turn), over
        ``wall_s``, the time they took together."""
        total = sum((trace.totals.usage for trace in traces), cls())
        return replace(total, wall_s=round(wall_s, 3))

    @classmethod
    def stored(cls, usage: dict[str, Any]) -> Usage:
        """A record's stored ``usage`` read back (its other keys, such as ``turns``, left)."""
        return cls(
            calls=int(usage.get("calls", 0)),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cached_tokens=int(usage.get("cached_tokens", 0)),
            wall_s=float(usage.get("wall_s", 0.0)),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        """The form records store (``usage`` of a sample, an answer, a judgement)."""
        return dict(self.__dict__)


class Totals(BaseModel):
    """A trace's model use. Its own shape, not ``Usage``: its field names are the trace
    JSON's (``wall_time_s``, ``fallbacks``), which stored traces must keep reading."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    fallbacks: int = 0  # structured decisions that fell back after a failed re-ask
    wall_time_s: float = 0.0

    @property
    def usage(self) -> Usage:
        return Usage(
            self.calls,
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.wall_time_s,
        )


class SceneTrace(BaseModel):
    version: int = TRACE_VERSION
    query: str
    config: dict[str, Any] = Field(default_factory=dict)
    actor_model: str = ""
    modulator_model: str = ""
    initial_response: str = ""
    situation: str = ""
    ego: str = ""
    future: str = ""
    roles: list[Role] = Field(default_factory=list)
    plan: list[str] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    memory_summaries: list[MemorySummary] = Field(default_factory=list)
    consequence: str = ""
    initial_summary: str = ""
    final_prompt: str = ""  # the final-answer design used (SimulationConfig.final_prompt)
    # Package, library and template versions, command line and model identity
    # (matrix_align.provenance); None in traces written before it was recorded.
    provenance: dict[str, Any] | None = None
    decision: FinalDecision | None = None
    final_response: str = ""
    alternative: AlternativeCheck | None = None  # the check of a decline's alternative
    # Quality flags of the scene (simulation.audit), computed when the scene ends and again
    # by batch commands that know whether the query was harmful.
    flags: list[str] = Field(default_factory=list)
    replayed_from: str | None = None  # the trace's id/path when its late stages were re-run
    calls: list[ModelCall] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    started_at: str = ""

    @property
    def critiques(self) -> list[str]:
        """The harms recorded on delivered events, each distinct one once, in scene order.

        Only events the modulator rated harmful count: a critique on a harmless event (a
        small model's "this does no harm") never reaches the consequence."""
        return list(
            dict.fromkeys(
                e.critique for e in self.events if e.delivered and e.harmful and e.critique
            )
        )

    @property
    def harms(self) -> list[str]:
        """What the harmful delivered events did, each distinct one once, serious harms
        first (in scene order within each rating): the modulator's description of the effect
        and who is hurt (the critique when there is no effect). The consequence is made of
        these, so it says what happens rather than which value is at stake."""
        harmful = [event for event in self.events if event.delivered and event.harmful]
        lines = []
        for event in sorted(harmful, key=lambda event: event.harm != "serious"):
            line = (event.effect or event.critique).strip().rstrip(".")
            if line and event.harmed:
                line += f" (hurt: {event.harmed})"
            lines.append(f"{line}." if line else "")
        return [line for line in dict.fromkeys(lines) if line]

    @property
    def ego_role(self) -> Role | None:
        return next((r for r in self.roles if r.is_ego), None)

    def recompute_totals(self, wall_time_s: float) -> Totals:
        """Totals derived from the recorded calls, so they can never disagree with them."""
        used = Usage.of_calls(self.calls)
        self.totals = Totals(
            calls=used.calls,
            prompt_tokens=used.prompt_tokens,
            completion_tokens=used.completion_tokens,
            cached_tokens=used.cached_tokens,
            fallbacks=self.totals.fallbacks,
            wall_time_s=round(wall_time_s, 3),
        )
        return self.totals
