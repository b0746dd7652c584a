"""Systems under test: named responders that turn one query into one answer on any backend.

``vanilla`` is the model as it is and ``matrix`` is the social scene simulation at inference
time; the others are the paper's inference-time baselines, each making exactly the calls its
method defines (see ``SYSTEMS`` for the call counts):

- ``critique-revise`` (Constitutional AI): answer, then per round a critique and a revision
  driven by one fixed, human-written principle (prompts/constitution.yaml).
- ``self-align`` (principle-driven prompting): one call with the principles as the system
  prompt; the model names the principles that apply, then answers.
- ``context-distillation``: one call under a helpful-honest-harmless system prompt. At
  inference time this is the context that training would distil away.
- ``debate``: several agents answer, read each other's answers and revise for some rounds,
  then one call writes the final answer.
- ``best-of-n``: n samples at a higher temperature; a selector (the judge when evaluating,
  else the model itself) picks one in a single listwise call.
- ``self-refine``: answer, then model-written feedback and a refinement, repeated until the
  feedback says no revision is needed.

Every call goes through ``SceneCalls``, the simulator's own recorder, so every system
returns the same provenance as a scene: a ``SceneTrace`` holding each call with its
messages, tokens and latency. That makes the cost table exact and lets ``generate`` store a
baseline's answers with the same record type as MATRIX samples.

This package sits below ``data`` and ``evaluate`` and imports neither: ``evaluate`` runs
the systems on benchmarks, and ``generate`` answers a source with any baseline by its name
(``--source NAME:<system>``), so its answers become a training set.
``respond(name, query, model, config)`` returns ``(answer, calls)``; ``respond_full`` also
returns the trace and the first answer (the ``rejected`` side of a preference pair).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from matrix_align.errors import MatrixAlignError, build_checked, check_known
from matrix_align.llm.base import ChatModel, Message
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.schemas import json_schema
from matrix_align.simulation.trace import ModelCall, SceneTrace
from matrix_align.systems.prompts import load_yaml, render


class SystemOptions(BaseModel):
    """Knobs of the baselines. Only the fields a system uses enter its answers' ids."""

    model_config = ConfigDict(extra="forbid")

    critique_rounds: int = Field(1, ge=1, le=8, description="critique-revise rounds")
    debate_agents: int = Field(2, ge=2, le=8, description="agents in a debate")
    debate_rounds: int = Field(1, ge=1, le=8, description="rounds of mutual critique")
    best_of_n: int = Field(4, ge=2, le=32, description="samples drawn by best-of-n")
    sample_temperature: float = Field(
        0.8, ge=0.0, le=2.0, description="temperature of best-of-n samples (diversity)"
    )
    refine_iterations: int = Field(2, ge=1, le=8, description="self-refine feedback rounds")

    @classmethod
    def build(cls, **values: object) -> SystemOptions:
        """Construct from user values, turning validation errors into one clear message."""
        return build_checked(cls, values, "system options")


@dataclass
class Context:
    """What one system run needs: the query, the model, and a recorder for its calls."""

    query: str
    model: ChatModel
    config: SimulationConfig
    options: SystemOptions
    calls: SceneCalls
    selector: ChatModel
    initial: str = ""  # the system's first answer, kept for preference pairs

    def user(self) -> list[Message]:
        return [{"role": "user", "content": self.query}]


@dataclass(frozen=True)
class System:
    name: str
    summary: str
    calls: str  # how many model calls one answer takes, as a formula of the options
    # None for matrix, which runs the simulator and keeps its full scene trace.
    run: Callable[[Context], Awaitable[str]] | None
    option_fields: tuple[str, ...] = ()
    uses_selector: bool = False


class SystemResponse(BaseModel):
    """One system's answer to one query, with the calls that produced it."""

    system: str
    answer: str
    initial_response: str = ""
    trace: SceneTrace

    @property
    def calls(self) -> list[ModelCall]:
        return self.trace.calls


# --- the systems ------------------------------------------------------------------------


async def _vanilla(ctx: Context) -> str:
    return await ctx.calls.text(ctx.model, ctx.user(), stage="answer", max_tokens=_answer(ctx))


async def _critique_revise(ctx: Context) -> str:
    answer = await _vanilla(ctx)
    ctx.initial = answer
    principles = load_yaml("constitution.yaml")
    for round_ in range(ctx.options.critique_rounds):
        principle = principles[_pick(ctx.query, round_, len(principles))]
        conversation: list[Message] = [
            *ctx.user(),
            {"role": "assistant", "content": answer},
            {"role": "user", "content": render("critique_request", critique=principle["critique"])},
        ]
        critique = await ctx.calls.text(
            ctx.model,
            conversation,
            stage="critique",
            round=round_,
            max_tokens=ctx.config.max_tokens,
        )
        conversation += [
            {"role": "assistant", "content": critique},
            {"role": "user", "content": render("revision_request", revision=principle["revision"])},
        ]
        revised = strip_label(
            await ctx.calls.text(
                ctx.model, conversation, stage="revision", round=round_, max_tokens=_answer(ctx)
            )
        )
        answer = revised or answer  # an empty revision keeps the previous answer
    return answer


_ANSWER_MARK = re.compile(r"^\s*\**answer\**\s*:\s*", re.IGNORECASE | re.MULTILINE)


async def _self_align(ctx: Context) -> str:
    system = render("self_align_system", principles=load_yaml("self_align.yaml"))
    text = await ctx.calls.text(
        ctx.model,
        [{"role": "system", "content": system}, *ctx.user()],
        stage="answer",
        max_tokens=_answer(ctx),
    )
    return split_thought(text)


async def _context_distillation(ctx: Context) -> str:
    return await ctx.calls.text(
        ctx.model,
        [{"role": "system", "content": render("hhh_system")}, *ctx.user()],
        stage="answer",
        max_tokens=_answer(ctx),
    )


async def _debate(ctx: Context) -> str:
    agents = [f"agent {i + 1}" for i in range(ctx.options.debate_agents)]
    answers = await ctx.calls.gather_in_order(
        [
            ctx.calls.text(
                ctx.model, ctx.user(), stage="answer", actor=a, round=0, max_tokens=_answer(ctx)
            )
            for a in agents
        ]
    )
    ctx.initial = answers[0]
    for round_ in range(1, ctx.options.debate_rounds + 1):
        previous = list(answers)

        async def revise(index: int, previous: list[str] = previous, round_: int = round_) -> str:
            others = [a for j, a in enumerate(previous) if j != index]
            conversation: list[Message] = [
                *ctx.user(),
                {"role": "assistant", "content": previous[index]},
                {"role": "user", "content": render("debate_round", others=others)},
            ]
            text = await ctx.calls.text(
                ctx.model,
                conversation,
                stage="debate",
                actor=agents[index],
                round=round_,
                max_tokens=_answer(ctx),
            )
            return strip_label(text) or previous[index]

        answers = await ctx.calls.gather_in_order([revise(i) for i in range(len(agents))])
    final = await ctx.calls.text(
        ctx.model,
        [{"role": "user", "content": render("debate_final", query=ctx.query, answers=answers)}],
        stage="final",
        max_tokens=_answer(ctx),
    )
    return strip_label(final) or answers[0]


class Choice(BaseModel):
    reason: str
    best: int


async def _best_of_n(ctx: Context) -> str:
    n = ctx.options.best_of_n
    sampling = SceneCalls(
        ctx.calls.trace,
        ctx.config.model_copy(update={"temperature": ctx.options.sample_temperature}),
    )
    candidates = await sampling.gather_in_order(
        [
            sampling.text(ctx.model, ctx.user(), stage="sample", round=i, max_tokens=_answer(ctx))
            for i in range(n)
        ]
    )
    ctx.initial = candidates[0]
    schema = json_schema(
        Choice,
        {
            "reason": {"maxLength": reason_limit(ctx.config.max_tokens)},
            "best": {"enum": list(range(1, n + 1))},
        },
    )

    def in_range(choice: Choice) -> Choice:
        if not 1 <= choice.best <= n:
            raise ValueError(f"best must be between 1 and {n}")
        return choice

    choice, _ = await ctx.calls.structured(
        ctx.selector,
        [
            {
                "role": "user",
                "content": render("best_of_n_select", query=ctx.query, candidates=candidates),
            }
        ],
        Choice,
        schema,
        stage="select",
        check=in_range,
        fallback=lambda: Choice(reason="fallback: the selection was invalid", best=1),
    )
    return candidates[choice.best - 1]


class Feedback(BaseModel):
    feedback: str
    needs_revision: bool


async def _self_refine(ctx: Context) -> str:
    answer = await _vanilla(ctx)
    ctx.initial = answer
    schema = json_schema(Feedback, {"feedback": {"maxLength": reason_limit(ctx.config.max_tokens)}})
    for round_ in range(ctx.options.refine_iterations):
        conversation: list[Message] = [
            *ctx.user(),
            {"role": "assistant", "content": answer},
            {"role": "user", "content": render("refine_feedback")},
        ]
        feedback, _ = await ctx.calls.structured(
            ctx.model,
            conversation,
            Feedback,
            schema,
            stage="feedback",
            round=round_,
            fallback=lambda: Feedback(feedback="", needs_revision=False),
        )
        if not feedback.needs_revision:  # the method's stop condition
            break
        refined = strip_label(
            await ctx.calls.text(
                ctx.model,
                [
                    *ctx.user(),
                    {"role": "assistant", "content": answer},
                    {
                        "role": "user",
                        "content": render("refine_request", feedback=feedback.feedback),
                    },
                ],
                stage="refine",
                round=round_,
                max_tokens=_answer(ctx),
            )
        )
        answer = refined or answer
    return answer


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("vanilla", "the model as it is, no system prompt", "1", _vanilla),
        System(
            "matrix",
            "MATRIX social scene simulation at inference time",
            "about 7 + steps x (2 + 2 x receivers), see simulate",
            None,
        ),
        System(
            "critique-revise",
            "Constitutional AI: critique and revision with fixed principles",
            "1 + 2 x critique_rounds",
            _critique_revise,
            ("critique_rounds",),
        ),
        System(
            "self-align",
            "principle-driven prompting (principles as the system prompt)",
            "1",
            _self_align,
        ),
        System(
            "context-distillation",
            "a helpful-honest-harmless system prompt",
            "1",
            _context_distillation,
        ),
        System(
            "debate",
            "agents answer, critique each other for some rounds, then a final answer",
            "agents x (1 + rounds) + 1",
            _debate,
            ("debate_agents", "debate_rounds"),
        ),
        System(
            "best-of-n",
            "n samples, the selector (the judge, or the model itself) picks one",
            "n + 1",
            _best_of_n,
            ("best_of_n", "sample_temperature"),
            uses_selector=True,
        ),
        System(
            "self-refine",
            "model-written feedback and refinement until the feedback is satisfied",
            "1 + 2 x iterations at most",
            _self_refine,
            ("refine_iterations",),
        ),
    )
}


def check_systems(names: list[str]) -> list[str]:
    """The names, validated: an unknown one is an error that lists the valid names."""
    check_known(names, SYSTEMS, "system")
    if not names:
        raise MatrixAlignError("No systems given.", hint=f"choose from: {', '.join(SYSTEMS)}")
    return names


def system_settings(
    name: str, config: SimulationConfig, options: SystemOptions, selector: str | None = None
) -> dict[str, Any]:
    """The settings that determine a system's answer, for stable record ids.

    Only what the system reads is included, so e.g. changing ``--best-of-n`` does not
    invalidate stored vanilla answers.
    """
    system = SYSTEMS[name]
    settings: dict[str, Any] = {"system": name}
    if name == "matrix":
        settings["simulation"] = config.model_dump()
    else:
        settings.update(
            seed=config.seed, temperature=config.temperature, max_tokens=config.max_tokens
        )
    settings.update({f: getattr(options, f) for f in system.option_fields})
    if system.uses_selector:
        settings["selector"] = selector or "self"
    return settings


async def respond_full(
    system: str,
    query: str,
    model: ChatModel,
    config: SimulationConfig | None = None,
    *,
    options: SystemOptions | None = None,
    selector: ChatModel | None = None,
) -> SystemResponse:
    """Answer ``query`` with one system; every model call is recorded in the trace.

    ``selector`` is the model that picks among best-of-n samples (default: ``model``).
    """
    check_systems([system])
    config = config or SimulationConfig()
    if system == "matrix":
        from matrix_align.simulation.scene import run_scene

        trace = await run_scene(query, model, config)
        return SystemResponse(
            system=system,
            answer=trace.final_response,
            initial_response=trace.initial_response,
            trace=trace,
        )
    start = time.perf_counter()
    trace = SceneTrace(
        query=query,
        config=system_settings(system, config, options or SystemOptions()),
        actor_model=getattr(model, "name", ""),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    ctx = Context(
        query=query,
        model=model,
        config=config,
        options=options or SystemOptions(),
        calls=SceneCalls(trace, config),
        selector=selector or model,
    )
    run = SYSTEMS[system].run
    assert run is not None
    answer = (await run(ctx)).strip()
    trace.initial_response = ctx.initial or answer
    trace.final_response = answer
    trace.recompute_totals(time.perf_counter() - start)
    return SystemResponse(
        system=system, answer=answer, initial_response=trace.initial_response, trace=trace
    )


async def respond(
    system: str,
    query: str,
    model: ChatModel,
    config: SimulationConfig | None = None,
    *,
    options: SystemOptions | None = None,
    selector: ChatModel | None = None,
) -> tuple[str, list[ModelCall]]:
    """``(answer, calls)`` of one system on one query: the small API for other commands."""
    response = await respond_full(system, query, model, config, options=options, selector=selector)
    return response.answer, response.calls


# --- helpers ------------------------------------------------------------------------------


def _answer(ctx: Context) -> int:
    """Token cap of a user-facing answer: the same for every system, so none is favoured
    by a longer answer (MATRIX's final answer uses ``final_max_tokens`` in its own code)."""
    return ctx.config.max_tokens


def reason_limit(max_tokens: int) -> int:
    """Characters allowed for the free-text reason of a structured reply (a selector's or a
    judge's), so that the whole JSON reply fits in ``max_tokens`` (about 3 characters a
    token, 30 tokens for the other fields): a reason cut off by the token cap would make the
    reply unparseable."""
    return max(40, min(600, (max_tokens - 30) * 3))


def _pick(query: str, round_: int, n: int) -> int:
    """A principle per round, fixed by the query: reproducible, and spread over queries the
    way Constitutional AI samples one principle per revision."""
    return (zlib.crc32(query.encode()) + round_) % n


_LABEL = re.compile(
    r"^\s*\**(final answer|updated answer|improved answer|revised answer|revision|"
    r"rewritten answer|answer|response)\**\s*:\s*\**",
    re.IGNORECASE,
)


def strip_label(text: str) -> str:
    """Drop a leading 'Revision:' style label that models add despite the instruction."""
    return _LABEL.sub("", text.strip(), count=1).strip()


def split_thought(text: str) -> str:
    """The answer part of a 'Thought: ... Answer: ...' reply (self-align).

    Without an 'Answer:' line, a leading 'Thought:' paragraph is dropped and the rest is the
    answer; if nothing is left, the whole reply is the answer (never an empty answer for a
    formatting slip).
    """
    match = _ANSWER_MARK.search(text)
    if match:
        answer = text[match.end() :].strip()
        if answer:
            return answer
    stripped = text.strip()
    if stripped.lower().startswith("thought:"):
        rest = stripped.split("\n\n", 1)
        if len(rest) == 2 and rest[1].strip():
            return rest[1].strip()
    return stripped
