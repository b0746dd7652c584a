"""The scene audit: quality flags of one scene, computed from its trace without a judge.

A small model can fill every schema and still write a scene that makes no sense: characters
named after our prompt's words, five roles with one trait, a reaction that copies the
instruction, "this does no harm" recorded as a harm, or a final answer that helps with a
harmful request. Each flag names one such failure, so a bad scene is counted, shown and
kept out of training data (``export --drop-flagged``) instead of slipping through.

Scene flags need only the trace. Answer flags also need to know whether the query was
harmful (the source item's label); batch commands pass it, ``simulate`` cannot.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources

from matrix_align.refusal import is_refusal
from matrix_align.simulation.trace import SceneTrace

# Scene flags: what makes a scene unfit to learn consequences from.
MACHINERY_ECHO = "machinery-echo"  # the simulator's own words inside the story
COPIED_INSTRUCTIONS = "copied-instructions"  # an output repeats a run of the prompt's words
BAD_ROLE_NAMES = "bad-role-names"  # placeholder, role-as-name or duplicate names
IDENTICAL_TRAITS = "identical-traits"  # two roles share their traits (or status)
DUPLICATE_EVENTS = "duplicate-events"  # the same action or reaction twice
NON_HARM_CRITIQUE = "non-harm-critique"  # a recorded harm whose text says there is none
ALL_REJECTED = "all-rejected"  # every action of the asker was rejected
FALLBACKS = "fallbacks"  # a structured decision fell back after a failed re-ask
SHORT_CAST = "short-cast"  # fewer people besides the asker than the scene asked for
FOREIGN_SCRIPT = "foreign-script"  # letters of a script the query does not use
HARMFUL_ALTERNATIVE = "harmful-alternative"  # a decline suggested a harm instead (dropped)
SPLIT_DECISION = "split-decision"  # the harm votes disagreed on whether any harm was serious
# Answer flags: what makes (query, final answer) wrong as a training row.
ANSWER_MENTIONS_SCENE = "answer-mentions-scene"  # the answer talks about the simulation
EMPTY_ANSWER = "empty-answer"
COMPLIES_WITH_HARMFUL = "complies-with-harmful"  # harmful item, the final answer helps
REFUSES_HARMLESS = "refuses-harmless"  # harmless item, the final answer declines
WORSE_THAN_FIRST = "worse-than-first"  # the final answer is less safe or less helpful

SCENE_FLAGS = (
    MACHINERY_ECHO,
    COPIED_INSTRUCTIONS,
    BAD_ROLE_NAMES,
    IDENTICAL_TRAITS,
    DUPLICATE_EVENTS,
    NON_HARM_CRITIQUE,
    ALL_REJECTED,
    FALLBACKS,
    SHORT_CAST,
    FOREIGN_SCRIPT,
    HARMFUL_ALTERNATIVE,
    SPLIT_DECISION,
)
ANSWER_FLAGS = (
    ANSWER_MENTIONS_SCENE,
    EMPTY_ANSWER,
    COMPLIES_WITH_HARMFUL,
    REFUSES_HARMLESS,
    WORSE_THAN_FIRST,
)
FLAGS = SCENE_FLAGS + ANSWER_FLAGS
# The flags that make a row wrong as training data: its answer is unsafe, an over-refusal,
# worse than the model's own first answer, empty, or talks about the machinery. Scene flags
# alone leave the answer usable, so they are counted and shown but not dropped by default.
DROP_BY_DEFAULT = ANSWER_FLAGS

FLAG_HELP = {
    MACHINERY_ECHO: "the simulator's words (modulator, ego, scene memory, receivers...) or "
    'its log marks ("(seen by ...)", "in response to [2]") appear in the story',
    COPIED_INSTRUCTIONS: "an output repeats six or more words of a prompt's instructions",
    BAD_ROLE_NAMES: 'a role is named by a placeholder ("Person 1", "John Doe") or by its own '
    'role ("John Hacker", a hacker; "teacher"), or two roles share a name',
    IDENTICAL_TRAITS: "two roles have the same traits or the same status",
    DUPLICATE_EVENTS: "the same action or reaction happens twice",
    NON_HARM_CRITIQUE: "an event rated harmful has a critique saying it does no harm",
    ALL_REJECTED: "every action of the person who asked was rejected",
    FALLBACKS: "a structured decision fell back after an invalid reply and a re-ask",
    SHORT_CAST: "the scene has fewer people besides the asker than --roles asked for",
    FOREIGN_SCRIPT: "the story or the answer has letters of a script the query does not use "
    "(Chinese characters in an English scene)",
    HARMFUL_ALTERNATIVE: "the decline first suggested doing something rated seriously "
    "harmful instead; it was written again without an alternative",
    SPLIT_DECISION: "with --harm-votes, some ratings of the scene found a serious harm and "
    "others none: its decision was a majority's, not every rating's",
    ANSWER_MENTIONS_SCENE: "the final answer mentions the simulation, draft or scene, or names "
    "a person who exists only in the scene",
    EMPTY_ANSWER: "the final answer is empty",
    COMPLIES_WITH_HARMFUL: "a harmful request got a final answer that does not decline",
    REFUSES_HARMLESS: "a harmless request got a final answer that declines",
    WORSE_THAN_FIRST: "the first answer was safe (or helpful) and the final one is not",
}

_MACHINERY = re.compile(
    r"\b(social modulator|modulator|ego|scene memory|receivers?|noticed_by|"
    r"json|simulat(?:ion|ed|e|or)|first answer|initial response)\b"
    # The scene log's own marks, copied into what a person says or does.
    r"|\(seen by\b|\bin response to \[\d+\]",
    re.IGNORECASE,
)
_ANSWER_MACHINERY = re.compile(
    r"\b(simulat(?:ion|ed|e|or)|the scene|the draft|draft answer|initial response|"
    r"first answer|social modulator|consequences (?:show|recorded|found))\b"
    # The consequence's own mark of who is hurt, copied into the answer.
    r"|\(hurt:",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"^(?:the\s+)?(?:person|people|role|stakeholder|character|name|user|someone|other|"
    r"individual|group|institution|asker)\s*[a-z0-9]?\s*\d*$|[\[\]{}<>]|^\W*$",
    re.IGNORECASE,
)
# Stock stand-ins for an unknown person or company ("John Doe", "Company XYZ").
_STAND_IN = re.compile(r"\b(?:doe|xyz)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{4,}")


def role_as_name(name: str, position: str) -> bool:
    """A stakeholder named by a placeholder, a stand-in name, or its own role: the last word
    of the name in its position ("John Hacker", a hacker; "Teacher", a teacher; a title
    first, "Professor Smith", is a name) or a name written as a common noun ("pharmacy")."""
    name = name.strip()
    words = [w.casefold() for w in _WORD.findall(name)]
    position = {w.casefold() for w in _WORD.findall(position)}
    return bool(
        _PLACEHOLDER.search(name)
        or _STAND_IN.search(name)
        or name[:1].islower()
        or (words and words[-1] in position)
    )


_NO_HARM = re.compile(
    r"\b(no harm|not harmful|(?:does|do|will|would) not (?:harm|hurt)|(?:doesn't|won't|"
    r"does no) (?:harm|hurt)|harms? (?:no one|nobody)|(?:no one|nobody) is (?:harmed|hurt)|"
    r"no negative)\b",
    re.IGNORECASE,
)
NGRAM = 6


def audit_scene(trace: SceneTrace, harmful: bool | None = None) -> list[str]:
    """The flags that apply to ``trace``, in ``FLAGS`` order. ``harmful`` is the label of
    the query (None when unknown: the answer flags that need it are skipped)."""
    found: set[str] = set()
    stakeholders = [r for r in trace.roles if not r.is_ego]
    story = _story_texts(trace)
    if any(_MACHINERY.search(text) for text in story):
        found.add(MACHINERY_ECHO)
    grams = _instruction_ngrams()
    if any(grams & _ngrams(text) for text in story):
        found.add(COPIED_INSTRUCTIONS)
    names = [r.name.casefold().strip() for r in trace.roles]
    if len(set(names)) < len(names) or any(role_as_name(r.name, r.status) for r in stakeholders):
        found.add(BAD_ROLE_NAMES)
    if _repeated(r.traits for r in trace.roles) or _repeated(r.status for r in stakeholders):
        found.add(IDENTICAL_TRAITS)
    if _repeated(e.text for e in trace.events if e.delivered):
        found.add(DUPLICATE_EVENTS)
    if any(e.harmful and _NO_HARM.search(e.critique) for e in trace.events if e.delivered):
        found.add(NON_HARM_CRITIQUE)
    actions = [e for e in trace.events if e.kind == "action"]
    if actions and not any(e.delivered for e in actions):
        found.add(ALL_REJECTED)
    if trace.totals.fallbacks:
        found.add(FALLBACKS)
    if len(stakeholders) < int(trace.config.get("n_roles") or 0):
        found.add(SHORT_CAST)
    if _scripts(" ".join([*story, trace.final_response])) - _scripts(trace.query):
        found.add(FOREIGN_SCRIPT)
    if trace.alternative is not None and trace.alternative.dropped:
        found.add(HARMFUL_ALTERNATIVE)
    if len(set(serious_by_rating(trace))) > 1:
        found.add(SPLIT_DECISION)

    final, first = trace.final_response, trace.initial_response
    if trace.final_prompt or final:  # the scene reached its answer
        if not final.strip():
            found.add(EMPTY_ANSWER)
        elif _ANSWER_MACHINERY.search(final) or _names_scene_people(trace):
            found.add(ANSWER_MENTIONS_SCENE)
        if harmful is not None:
            found.update(answer_flags(first, final, harmful))
    return [flag for flag in FLAGS if flag in found]


def serious_by_rating(trace: SceneTrace) -> list[bool]:
    """With harm votes: per rating (the rulings, then each re-rating), whether it found any
    delivered event seriously harmful, the fact a decline rests on. Empty without votes."""
    voted = [e.votes for e in trace.events if e.delivered and e.votes]
    ratings = max(map(len, voted), default=0)
    return [any(v[k] == "serious" for v in voted if len(v) > k) for k in range(ratings)]


def answer_flags(first: str, final: str, harmful: bool) -> list[str]:
    """Safety and helpfulness of the final answer against the query's label and the first
    answer, read by the refusal-phrase detector."""
    final_refused, first_refused = is_refusal(final), is_refusal(first)
    flags = []
    if harmful and not final_refused:
        flags.append(COMPLIES_WITH_HARMFUL)
    if not harmful and final_refused:
        flags.append(REFUSES_HARMLESS)
    if (harmful and first_refused and not final_refused) or (
        not harmful and not first_refused and final_refused
    ):
        flags.append(WORSE_THAN_FIRST)
    return flags


def rejections(trace: SceneTrace) -> dict[str, tuple[int, int]]:
    """Per event kind (intent, action, reaction): (ruled infeasible, ruled). The intent
    always happens, so its event keeps no rejection: its verdict is read from the round-0
    ruling's call (a ruling that fell back is not counted)."""
    counts = {kind: [0, 0] for kind in ("intent", "action", "reaction")}
    for event in trace.events:
        if event.kind != "intent":
            counts[event.kind][0] += not event.delivered
            counts[event.kind][1] += 1
    for call in trace.calls:
        if call.stage == "modulate" and call.round == 0 and call.valid:
            verdict = call.parsed.get("possible", True) if isinstance(call.parsed, dict) else True
            counts["intent"][0] += not verdict
            counts["intent"][1] += 1
    return {kind: (rejected, ruled) for kind, (rejected, ruled) in counts.items()}


def check_flags(names: Iterable[str]) -> list[str]:
    """Flag names, validated (for ``--drop-flagged``); an unknown one raises ValueError."""
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in FLAGS]
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    return names


def _names_scene_people(trace: SceneTrace) -> bool:
    """Whether the final answer names someone the scene made up ("it would harm John Smith
    and Jane Doe"): a role's name that the query does not contain, capitalised as in the
    answer, whole words. A one-word name counts only inside a sentence, where a plain word
    ("Teacher", "Neighbours") would not be capitalised. The asker never met these people,
    so such an answer is wrong as a training row."""
    query, answer = trace.query.casefold(), trace.final_response
    for role in trace.roles:
        name = role.name.strip()
        if not name[:1].isupper() or name.casefold() in query:
            continue
        for found in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", answer):
            before = answer[: found.start()].rstrip()
            if " " in name or (before and before[-1] not in ".!?:\"'("):
                return True
    return False


def _story_texts(trace: SceneTrace) -> list[str]:
    """Everything the model wrote inside the story (not the answers)."""
    texts = [trace.situation, trace.ego, trace.future, *trace.plan]
    for role in trace.roles:
        texts += [role.name, role.traits, role.status]
    for event in trace.events:
        texts += [event.text, event.verdict.reason, event.effect, event.harmed, event.critique]
    texts += [s.text for s in trace.memory_summaries]
    return [t for t in texts if t]


def _scripts(text: str) -> set[str]:
    """The writing systems of ``text``'s letters other than Latin, by the first word of each
    letter's Unicode name (CJK, CYRILLIC, ARABIC, HIRAGANA...). Latin is left out: names and
    technical words in Latin letters are normal in a scene about a query in any language."""
    return {
        unicodedata.name(c, "UNKNOWN").split(" ")[0]
        for c in set(text)
        if c.isalpha() and not c.isascii()
    } - {"LATIN"}


def _repeated(values: Iterable[str]) -> bool:
    counts = Counter(v.casefold().strip(" .") for v in values if v and v.strip())
    return any(n > 1 for n in counts.values())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.casefold())


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)}


@cache
def _instruction_ngrams() -> frozenset[tuple[str, ...]]:
    """Word n-grams of the fixed text of the scene's prompt templates (variables removed),
    so a copied instruction is caught whatever the current wording of the prompts."""
    folder = resources.files("matrix_align.simulation").joinpath("prompts")
    grams: set[tuple[str, ...]] = set()
    for entry in folder.iterdir():
        if entry.name.endswith(".j2") and not entry.name.startswith("final"):
            text = re.sub(r"\{[{%#].*?[}%#]\}", "\n", entry.read_text("utf-8"), flags=re.S)
            for line in text.splitlines():
                grams |= _ngrams(line)
    return frozenset(grams)
