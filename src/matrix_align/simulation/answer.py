"""The answers around a scene: the model's first answer, the consequence drawn from the
scene, and the final, consequence-aware answer in one of three designs (``final_prompt``):
``verdict`` (help or decline decided from the scene's harm ratings, then answered under a
system prompt for that decision), ``system`` (the consequence in the system prompt, the
model decides), ``authors`` (all context in one user turn, as the authors' code did) and
``paper`` (the same with a worked refusal example, as they published it).

Only ``paper`` shows a worked example, to reproduce the paper: with small models a few-shot
example leaks into the answer (the authors' code returned its example refusal even for
harmless queries).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from matrix_align.llm.base import ChatModel, Message
from matrix_align.refusal import is_refusal
from matrix_align.simulation.calls import SceneCalls
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.schemas import AlternativeRuling, Summary, clip, json_schema
from matrix_align.simulation.trace import AlternativeCheck, FinalDecision, ModelCall, SceneTrace

if TYPE_CHECKING:
    from matrix_align.simulation.scene import Scene

NO_HARM = "Nobody was harmed."
SUMMARY_LIMIT = 400
REASON_LIMIT = 160  # characters of the alternative check's two sentences


def query_messages(query: str) -> list[Message]:
    """The query as a user would send it: no system prompt, so the answer is the model's own."""
    return [{"role": "user", "content": query}]


# The first answer is seeded like the vanilla system's answer, so in an evaluation MATRIX
# starts from exactly the answer it is compared with.
FIRST_ANSWER_SEED_STAGE = "answer"


async def initial_response(scene: Scene) -> str:
    return await scene.calls.text(
        scene.actor,
        query_messages(scene.trace.query),
        stage="initial",
        max_tokens=scene.config.max_tokens,
        seed_stage=FIRST_ANSWER_SEED_STAGE,
    )


async def direct_answer(
    query: str, model: ChatModel, config: SimulationConfig
) -> tuple[str, ModelCall]:
    """The model's own answer with no simulation (``direct`` samples, the vanilla system)."""
    calls = SceneCalls(SceneTrace(query=query), config)
    text = await calls.text(
        model,
        query_messages(query),
        stage="initial",
        max_tokens=config.max_tokens,
        seed_stage=FIRST_ANSWER_SEED_STAGE,
    )
    return text, calls.trace.calls[0]


# The most harms a consequence lists (serious first), with a count of the rest. A scene where
# the model routes every action to every role records many, mostly the same harm to each
# person in turn; sent in full, that list was the largest part of the consequence and final
# prompts (docs/effect.md). The authors' code capped its
# critiques otherwise: every nine folded into a summary, none written after four summaries.
MAX_HARMS = 5


def listed_harms(trace: SceneTrace) -> list[str]:
    """The harms a consequence or final prompt lists: at most ``MAX_HARMS``, then a count."""
    harms = trace.harms
    if len(harms) <= MAX_HARMS:
        return harms
    rest = len(harms) - MAX_HARMS
    return [*harms[:MAX_HARMS], f"And {rest} more harm{'s' if rest > 1 else ''}."]


def critiques(trace: SceneTrace) -> list[str]:
    """Every delivered action's critique (``consequence: critiques``), each distinct one
    once, in scene order, after the action it is about: the paper's consequence, whatever
    the harm rating. Unlike the authors' code, all are listed (theirs folded every nine
    into a summary and wrote none after four such summaries: at most 36, more than a scene
    at the paper's sizes delivers)."""
    lines = [f"{e.actor}: {e.text} Critique: {e.critique}" for e in trace.events
             if e.delivered and e.critique]  # fmt: skip
    return list(dict.fromkeys(lines))


async def consequence(scene: Scene) -> None:
    """What the scene recorded, plus a summary of it: the harms (``listed_harms``), or
    with ``consequence: critiques`` every action's critique (``critiques``)."""
    if scene.config.consequence == "critiques":
        harms = critiques(scene.trace)
        task = scene.config.render("consequence_critiques", critiques=harms)
    else:
        harms = listed_harms(scene.trace)
        task = scene.config.render("consequence", harms=harms)
    if not harms:
        scene.trace.consequence = NO_HARM
        return
    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(task),
        Summary,
        json_schema(Summary, {"summary": {"maxLength": SUMMARY_LIMIT}}),
        stage="consequence",
        check=lambda v: Summary(summary=clip(v.summary, SUMMARY_LIMIT)),
        fallback=lambda: Summary(summary=""),
    )
    lines = [f"- {harm}" for harm in harms]
    if value.summary:
        lines.append(f"In sum: {value.summary}")
    scene.trace.consequence = "\n".join(lines)


async def summarise_initial(scene: Scene) -> None:
    """One sentence of the first answer with harmful details removed."""
    value, _ = await scene.calls.structured(
        scene.actor,
        scene.messages(scene.config.render("initial_summary"), with_memory=False),
        Summary,
        json_schema(Summary, {"summary": {"maxLength": SUMMARY_LIMIT}}),
        stage="initial_summary",
        check=lambda v: Summary(summary=clip(v.summary, SUMMARY_LIMIT)),
        # Without a valid summary, say only that a draft existed: never leak its details.
        fallback=lambda: Summary(summary="The draft answered the request as asked."),
    )
    scene.trace.initial_summary = value.summary


async def final_response(scene: Scene) -> None:
    """The consequence-aware answer, in the design ``config.final_prompt`` names."""
    trace = scene.trace
    design = scene.config.final_prompt
    trace.final_prompt = design
    if design in ("authors", "paper"):
        # The authors' structure: all context in one user turn, asking for an updated answer
        # (``paper``: with a worked refusal example, as they published it).
        messages: list[Message] = [
            {
                "role": "user",
                "content": scene.config.render(
                    f"final_{design}",
                    query=trace.query,
                    initial_summary=trace.initial_summary,
                    consequence=trace.consequence,
                ).strip(),
            }
        ]
    else:
        # The lessons of the scene go in the system prompt and the query stays the user's
        # own message, so the model answers the user rather than commenting on instructions.
        if design == "verdict":
            trace.decision = decide(trace, scene.config.keep_refusals)
            if not trace.decision.help and not trace.harms:
                # A refusal kept although the scene recorded no harm: the scene has nothing
                # to add, so the first answer stands as it was (and costs no call).
                trace.final_response = trace.initial_response
                return
            system = (
                scene.config.render("final_verdict_help", harms=listed_harms(trace))
                if trace.decision.help
                else scene.config.render("final_verdict_decline", consequence=trace.consequence)
            )
        else:
            system = scene.config.render(
                "final_system",
                initial_summary=trace.initial_summary,
                consequence=trace.consequence,
            )
        messages = [{"role": "system", "content": system.strip()}, *query_messages(trace.query)]
    await _write_final(scene, messages)
    if trace.decision is not None and not trace.decision.help and scene.config.check_alternative:
        await check_alternative(scene)


async def _write_final(scene: Scene, messages: list[Message]) -> None:
    """The final answer's call; its text, without a leading label, is the answer."""
    text = await scene.calls.text(
        scene.actor, messages, stage="final", max_tokens=scene.config.final_max_tokens
    )
    scene.trace.final_response = _strip_preamble(text)


# The words by which a decline points to something else to do. The verdict decline asks
# for no alternative, because a small model's alternatives can be another road to the harm;
# so only a decline that suggests something anyway is rated: asked to rate a reply that
# suggests nothing, a small model invents a suggestion and rates that (docs/effect.md,
# "A decline's alternative, checked").
_SUGGESTS = re.compile(
    r"\b(instead|alternatives?|alternatively|suggest\w*|recommend\w*|consider(?:ing)?"
    r"|you (?:could|can|might|may|should)|try)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def suggesting_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that suggest something else to do."""
    return [s for s in _SENTENCE_END.split(text.strip()) if _SUGGESTS.search(s)]


async def check_alternative(scene: Scene) -> None:
    """Rate the harm of what a written decline suggests instead, when it suggests anything;
    a serious one is dropped: the sentences that suggest it are cut from the decline. A small
    model's "safe alternative" can be the harm by another road (covert monitoring of a
    partner, suggested through "a trusted friend"), and a decline is training data that must
    never suggest harm."""
    trace = scene.trace
    suggesting = suggesting_sentences(trace.final_response)
    if not suggesting:
        return
    value, _ = await scene.calls.structured(
        scene.modulator,
        # The scene's log is left out: the ruling is on the suggestion, not on the scene.
        scene.messages(
            scene.config.render("alternative_check", reply=trace.final_response),
            with_memory=False,
        ),
        AlternativeRuling,
        json_schema(
            AlternativeRuling,
            {
                "suggestion": {"maxLength": REASON_LIMIT},
                "what_follows": {"maxLength": REASON_LIMIT},
            },
        ),
        stage="alternative",
        check=lambda v: v.model_copy(
            update={
                "suggestion": clip(v.suggestion, REASON_LIMIT),
                "what_follows": clip(v.what_follows, REASON_LIMIT),
            }
        ),
        # Without a valid ruling the decline stands as written: the check only ever removes.
        fallback=lambda: AlternativeRuling(suggestion="", what_follows="", harm="none"),
    )
    dropped = value.harm == "serious" and bool(value.suggestion.strip())
    trace.alternative = AlternativeCheck(**value.model_dump(), dropped=dropped)
    if dropped:
        sentences = _SENTENCE_END.split(trace.final_response.strip())
        # The first sentence is the decline itself and always stays.
        kept = sentences[:1] + [s for s in sentences[1:] if s not in suggesting]
        trace.final_response = " ".join(kept)


def decide(trace: SceneTrace, keep_refusals: bool = True) -> FinalDecision:
    """Help or decline, from the scene's typed harm ratings (no free text is read).

    Decline when an action the scene let happen did serious harm, or when the first answer
    declined and either ``keep_refusals`` holds or the scene recorded any harm. A compliance
    is overturned only by a serious harm. Refusals are kept by default because, measured on
    the small models that run here, a scene without harm was often a sanitised retelling of
    a harmful request (the asker became a journalist studying its ethics): no evidence that
    helping is safe (docs/effect.md).
    """
    delivered = [e for e in trace.events if e.delivered]
    serious = [e for e in delivered if e.harm == "serious"]
    minor = [e for e in delivered if e.harm == "minor"]
    ratings = max((len(e.votes) for e in delivered), default=0)
    voted = f" (the median of {ratings} ratings each)" if ratings > 1 else ""
    if serious:
        return FinalDecision(
            help=False,
            reason=f"{len(serious)} event(s) did serious harm{voted}",
            basis="serious harm",
        )
    if is_refusal(trace.initial_response) and (keep_refusals or minor):
        why = f"and {len(minor)} event(s) did minor harm" if minor else "and refusals are kept"
        return FinalDecision(
            help=False, reason=f"the first answer declined {why}{voted}", basis="refusal kept"
        )
    if minor:
        return FinalDecision(
            help=True,
            reason=f"{len(minor)} event(s) did minor harm, none serious{voted}",
            basis="minor harm",
        )
    return FinalDecision(help=True, reason=f"no event did harm{voted}", basis="no harm")


_PREAMBLE = re.compile(r"^(final answer|answer|response)\s*:\s*", re.IGNORECASE)


def _strip_preamble(text: str) -> str:
    """Drop a leading 'Answer:' label that small models like to add."""
    return _PREAMBLE.sub("", text.strip(), count=1)
