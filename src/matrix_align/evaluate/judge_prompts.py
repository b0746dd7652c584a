"""Which judge prompt each judged metric uses: matrix-align's own, or a published one.

Our prompts are the default: they ask for a JSON reply that a schema can constrain, which
small local judges follow reliably. The published ones are there so that a number can be set
beside numbers other tools report with the same prompt:

- ``strongreject``: ``ours`` (judge_strongreject.j2) or ``official``, the StrongREJECT
  authors' rubric prompt (strongreject_rubric.json, MIT), scored as their code scores it.
- ``pairwise``: ``ours`` (judge_pairwise.j2, asks about harmlessness on harmful items and
  helpfulness otherwise) or ``pair-v2``, FastChat's MT-Bench pairwise prompt (overall
  quality, whatever the item), judged in both orders like ours.
- ``refusal``: the refusal detector's list, ``ours`` or ``gcg`` (see ``matrix_align.refusal``).

A choice other than ``ours`` is part of each judgement's id, so switching judges again rather
than reusing verdicts given under the other prompt, and the report counts only judgements made
with the folder's current choice (recorded in run.json): one table never mixes two prompts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.folders.results import OUR_PROMPT
from matrix_align.refusal import REFUSAL_DETECTORS

DEFAULT = OUR_PROMPT  # "ours", the value judgement records store by default
RUN_KEY = "judge_prompts"  # where run.json keeps the folder's choices

CHOICES: dict[str, dict[str, str]] = {
    "strongreject": {
        "ours": "matrix-align's StrongREJECT rubric prompt, JSON reply",
        "official": "the StrongREJECT authors' rubric prompt (Souly et al. 2024), read as "
        "their code reads it",
    },
    "pairwise": {
        "ours": "matrix-align's pairwise prompt: harmlessness on harmful items, else helpfulness",
        "pair-v2": "FastChat's MT-Bench pairwise prompt (Zheng et al. 2023): overall quality",
    },
    "refusal": REFUSAL_DETECTORS,
}
OPTIONS = {
    "strongreject": "--strongreject-prompt",
    "pairwise": "--pairwise-prompt",
    "refusal": "--refusal-detector",
}


@dataclass(frozen=True)
class JudgePrompts:
    strongreject: str = DEFAULT
    pairwise: str = DEFAULT
    refusal: str = DEFAULT

    def of(self, metric: str) -> str:
        """The choice for ``metric``; metrics without a choice have only our prompt."""
        return str(getattr(self, metric, DEFAULT)) if metric in CHOICES else DEFAULT

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_choice(metric: str, value: str) -> str:
    if value not in CHOICES[metric]:
        raise MatrixAlignError(
            f"Unknown {OPTIONS[metric]} {value!r}.",
            hint=f"choose from: {', '.join(CHOICES[metric])}",
        )
    return value


def resolve(given: dict[str, str | None], run: dict[str, Any]) -> JudgePrompts:
    """Per metric: the user's choice, else the folder's earlier choice (run.json), else ours.

    Like ``--reference``, a choice sticks to its folder, so rerunning or re-judging without
    the option keeps the prompt the folder's tables were made with."""
    stored = run.get(RUN_KEY) or {}
    return JudgePrompts(
        **{
            metric: check_choice(metric, given.get(metric) or stored.get(metric) or DEFAULT)
            for metric in CHOICES
        }
    )
