"""SceneTrace: the whole record of one simulated scene, the unit of provenance.

Every dataset sample keeps its trace beside it, so any answer can be traced back to the
scene, the decisions and the exact model calls that produced it. Round-trips through JSON
(``SceneTrace.model_validate_json(trace.model_dump_json())``).
"""

from __future__ import annotations

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
    (``check_alternative``); ``dropped``: rated serious, so the decline was written again
    without an alternative."""

    suggestion: str = ""
    what_follows: str = ""
    harm: Harm = "none"
    dropped: bool = False


class Totals(BaseModel):
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    fallbacks: int = 0  # structured decisions that fell back after a failed re-ask
    wall_time_s: float = 0.0


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
        self.totals = Totals(
            calls=len(self.calls),
            prompt_tokens=sum(c.prompt_tokens for c in self.calls),
            completion_tokens=sum(c.completion_tokens for c in self.calls),
            cached_tokens=sum(c.cached_tokens for c in self.calls),
            fallbacks=self.totals.fallbacks,
            wall_time_s=round(wall_time_s, 3),
        )
        return self.totals
