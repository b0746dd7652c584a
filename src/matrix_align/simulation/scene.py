"""One MATRIX scene, run as deterministic rounds.

    initial answer -> set-up (situation, ego, future, plan; roles and profiles)
    -> for each plan step: the ego acts, the modulator rules on it (feasible? who notices?
       what harm?), every role that noticed reacts, and each reaction is ruled on too
    -> consequence (the recorded harms, summarised) -> final, consequence-aware answer.

Every prompt of a scene starts with the same header (query, first answer, then the scene
and roles once known) followed by the append-only scene memory, and ends with the
call-specific task, so a serving engine's prefix cache reuses the earlier calls' work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel, Message
from matrix_align.simulation import answer, modulator, roles, setup
from matrix_align.simulation.audit import audit_scene
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.trace import Event, SceneTrace
from matrix_align.text import require_unicode

Observer = Callable[[str, SceneTrace], None]

HEADER_ANSWER_LIMIT = 1500  # characters of the first answer repeated in every scene prompt
# What replay re-runs.
LATE_STAGES = ("votes", "consequence", "initial_summary", "final", "alternative")


class Scene:
    """The state of a scene in progress and the prompts built from it."""

    def __init__(
        self,
        query: str,
        actor: ChatModel,
        modulator_model: ChatModel,
        config: SimulationConfig,
        on_event: Observer | None,
    ):
        self.actor = actor
        self.modulator = modulator_model
        self.config = config
        self.trace = SceneTrace(
            query=query,
            config=config.model_dump(),
            actor_model=getattr(actor, "name", ""),
            modulator_model=getattr(modulator_model, "name", ""),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        self.calls = SceneCalls(self.trace, config)
        self._on_event = on_event
        # Event ids each role has witnessed: its own actions and what was routed to it.
        self.observed: dict[str, list[int]] = {}

    @classmethod
    def resume(cls, trace: SceneTrace, model: ChatModel, config: SimulationConfig) -> Scene:
        """A scene rebuilt around a stored trace (for replay): prompts and memory are made
        from the trace exactly as they were when the scene ran."""
        scene = cls(trace.query, model, model, config, None)
        scene.trace = trace
        scene.calls = SceneCalls(trace, config)
        for event in trace.events:
            if event.delivered:
                for role in (event.actor, *event.receivers):
                    scene.observed.setdefault(role, []).append(event.id)
        return scene

    # -- notifications -------------------------------------------------------------------
    def emit(self, kind: str) -> None:
        if self._on_event is not None:
            self._on_event(kind, self.trace)

    # -- events --------------------------------------------------------------------------
    def add_event(self, event: Event) -> Event:
        """Append an event (ids are assigned here, in deterministic order) and route it."""
        event.id = len(self.trace.events) + 1
        self.trace.events.append(event)
        if event.verdict.feasible:
            self.observed.setdefault(event.actor, []).append(event.id)
            for receiver in event.receivers:
                self.observed.setdefault(receiver, []).append(event.id)
        self.emit("event")
        return event

    def observations(self, role: str, limit: int = 6) -> list[Event]:
        """The latest events a role has witnessed (its private memory)."""
        ids = self.observed.get(role, [])[-limit:]
        return [self.trace.events[i - 1] for i in ids]

    def memory_events(self) -> list[Event]:
        """Delivered events not yet folded into the memory summary."""
        through = (
            self.trace.memory_summaries[-1].through_event if self.trace.memory_summaries else 0
        )
        return [e for e in self.trace.events if e.verdict.feasible and e.id > through]

    # -- prompts -------------------------------------------------------------------------
    def header(self) -> str:
        first = self.trace.initial_response
        if len(first) > HEADER_ANSWER_LIMIT:
            first = first[:HEADER_ANSWER_LIMIT] + " [...]"
        ready = bool(self.trace.plan)
        return self.config.render(
            "scene_header",
            query=self.trace.query,
            initial_response=first,
            setup=self.trace if ready else None,
            roles=self.trace.roles,
        )

    def memory(self, viewers: list[str] | None = None) -> str:
        """The scene memory a call shows: everything delivered (the summary of folded events,
        then the rest), or with ``private_memory`` and ``viewers`` (the people a call speaks
        for) only the latest ``memory_budget`` events any of them witnessed, never the
        summary, which digests events they may not have seen."""
        if viewers is not None and self.config.private_memory:
            seen = sorted({i for name in viewers for i in self.observed.get(name, [])})
            events = [self.trace.events[i - 1] for i in seen[-self.config.memory_budget :]]
            return self.config.render("scene_log", summary=None, events=events)
        summary = self.trace.memory_summaries[-1] if self.trace.memory_summaries else None
        return self.config.render("scene_log", summary=summary, events=self.memory_events())

    def messages(
        self, task: str, *, with_memory: bool = True, viewers: list[str] | None = None
    ) -> list[Message]:
        """System preamble, then header + memory (stable prefix), then the task (last).
        ``viewers``: the people the call speaks for (their private memory, if it is on)."""
        body = self.header() + (self.memory(viewers) if with_memory else "") + task
        return [
            {"role": "system", "content": self.config.render("system_scene")},
            {"role": "user", "content": body},
        ]

    # -- the scene -----------------------------------------------------------------------
    async def run(self, initial_response: str | None) -> SceneTrace:
        started = time.perf_counter()
        if initial_response is None:
            initial_response = await answer.initial_response(self)
        self.trace.initial_response = initial_response
        self.emit("initial")

        await setup.set_up(self)
        self.emit("setup")
        if self.config.intent_event:
            await roles.state_intent(self)

        for round_no, step in enumerate(self.trace.plan, start=1):
            await self.play_round(round_no, step)
            if len(self.memory_events()) > self.config.memory_budget:
                await modulator.fold_memory(self, round_no)
                self.emit("memory")

        await self.conclude()
        self.trace.recompute_totals(time.perf_counter() - started)
        self.finish()
        return self.trace

    async def conclude(self) -> None:
        """The late stages (``LATE_STAGES``): the harm votes (``harm_votes``), the consequence
        and the one-sentence summary of the first answer, then the final answer. Replay
        re-runs only these.

        One after the other, not together: run together, the summary could take the server
        slot whose cache holds the scene's log (every slot shares the header it starts with),
        and the consequence, which repeats that log, then recomputed most of its prompt
        (docs/simulation.md)."""
        await modulator.vote_harms(self)
        await answer.consequence(self)
        await answer.summarise_initial(self)
        self.emit("consequence")
        await answer.final_response(self)

    def finish(self) -> None:
        self.trace.flags = audit_scene(self.trace)
        self.emit("final")

    async def play_round(self, round_no: int, step: str) -> None:
        ego = self.trace.ego_role
        assert ego is not None
        frontier = [e for e in [await roles.ego_act(self, ego.name, step, round_no)] if e]
        for _depth in range(self.config.reaction_depth):
            pending = [
                (role, trigger)
                for trigger in frontier
                for role in trigger.receivers
                if role != trigger.actor
            ]
            if not pending:
                break
            if self.config.reactions == "joint":
                triggers = list(dict.fromkeys(trigger.id for _, trigger in pending))
                by_trigger = await self.calls.gather_in_order(
                    [
                        roles.react_jointly(self, self.trace.events[i - 1], round_no)
                        for i in triggers
                    ]
                )
                proposals = [outcome for outcomes in by_trigger for outcome in outcomes]
            else:
                proposals = await self.calls.gather_in_order(
                    [
                        roles.propose_reaction(self, role, trigger, round_no)
                        for role, trigger in pending
                    ]
                )
            frontier = [event for event in (self.add_attempts(o) for o in proposals) if event]

    def add_attempts(self, attempts: roles.Attempts) -> Event | None:
        """Record the attempts of one actor in order; return the delivered event, if any."""
        delivered = None
        previous: Event | None = None
        for attempt in attempts:
            if previous is not None:
                attempt.replaces = previous.id
            previous = self.add_event(attempt)
            if attempt.verdict.feasible:
                delivered = attempt
        return delivered


def check_query(query: str) -> None:
    """A query a scene can run: not blank, and text that can be sent (valid Unicode)."""
    if not query or not query.strip():
        raise MatrixAlignError("The query is empty.", hint="pass the question to simulate")
    require_unicode(query, "The query")


async def run_scene(
    query: str,
    actor: ChatModel,
    config: SimulationConfig | None = None,
    *,
    modulator: ChatModel | None = None,
    initial_response: str | None = None,
    on_event: Observer | None = None,
) -> SceneTrace:
    """Simulate the social scene of ``query`` and return its full trace.

    ``actor`` plays every role; ``modulator`` (default: the same model, the paper's
    monopolylogue) rules on every action. ``initial_response`` skips the first call when the
    caller already has the model's answer. ``on_event(kind, trace)`` is called as the scene
    unfolds (kinds: initial, setup, event, memory, consequence, final) for live display.
    """
    check_query(query)
    from matrix_align.provenance import stamp

    scene = Scene(query.strip(), actor, modulator or actor, config or SimulationConfig(), on_event)
    trace = await scene.run(initial_response)
    stamp(trace, actor, scene.config)
    return trace
