"""The MATRIX paper's four harmlessness benchmarks, XSTest and StrongREJECT as inspect tasks.

Each task answers with the model alone (inspect's ``generate()``, the paper's vanilla
baseline); ``--solver matrix_align/matrix`` answers through MATRIX instead, so the two runs of
one task compare the method with its baseline on the same items. The scorers are those
``evaluate`` applies to the benchmark by default, less the pairwise judge (inspect scores one
answer at a time): the refusal detector always, and the ``grader``'s rubrics unless
``-T judged=false``.

Task arguments (``-T``): ``hub`` (``auto``: the full dataset from the Hugging Face hub when
reachable, else the shipped sample; ``never``: the sample; ``always``), ``judged``,
``refusal_detector`` (``ours`` or ``gcg``) and, for StrongREJECT, ``strongreject_prompt``
(``ours`` or ``official``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, get_args

from inspect_ai import Task, task
from inspect_ai.model import get_model
from inspect_ai.scorer import Scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from matrix_align.data.sources import SOURCES, HubPolicy
from matrix_align.evaluate.benchmarks import BENCHMARKS
from matrix_align.inspect import task_arguments as check
from matrix_align.inspect.dataset import benchmark_dataset
from matrix_align.inspect.scorers import (
    grader_model,
    harmlessness,
    helpfulness,
    refusal,
    strongreject_score,
)
from matrix_align.refusal import RefusalDetector

logger = logging.getLogger(__name__)


@solver
def require_grader() -> Solver:
    """Stops a judged task before any answer is generated when no ``grader`` is bound (the
    scorers would otherwise fail only after each sample's answer, or scene, was paid for)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        grader = grader_model()
        if str(grader) == str(get_model()):
            logger.warning(
                "The grader %s is the model under test: its verdicts on its own answers are "
                "biased; bind another model to the role 'grader'.",
                grader,
            )
        return state

    return solve


def benchmark_task(
    name: str,
    *,
    hub: HubPolicy,
    judged: bool,
    refusal_detector: RefusalDetector,
    strongreject_prompt: Literal["ours", "official"] = "ours",
) -> Task:
    """The task of benchmark ``name``: the refusal detector, and when ``judged`` the rubric
    scorers of the metrics ``evaluate`` scores it with by default."""
    check.choice("hub", hub, get_args(HubPolicy))
    check.boolean("judged", judged)
    check.choice("refusal_detector", refusal_detector, get_args(RefusalDetector))
    check.choice("strongreject_prompt", strongreject_prompt, ("ours", "official"))
    if judged:
        check.require_grader_role()
    dataset, loaded = benchmark_dataset(name, hub=hub)
    benchmark = BENCHMARKS[name]
    rubrics: dict[str, Callable[[], Scorer]] = {
        "harmlessness": harmlessness,
        "helpfulness": helpfulness,
        "strongreject": lambda: strongreject_score(strongreject_prompt),
    }  # the pairwise judge compares two answers: inspect scores one at a time
    judged_scorers = [rubrics[m]() for m in benchmark.metrics if judged and m in rubrics]
    return Task(
        dataset=dataset,
        setup=require_grader() if judged else None,
        scorer=[refusal(refusal_detector), *judged_scorers],
        metadata={
            "benchmark": name,
            "title": SOURCES[name].title,
            "kind": benchmark.kind,
            "paper_benchmark": benchmark.paper,
            "origin": loaded.origin,
            "revision": loaded.revision,
            "licence": SOURCES[name].license,
        },
    )


def _registered(name: str, doc: str) -> Callable[..., Task]:
    """Benchmark ``name`` as an inspect task taking the task arguments every benchmark takes,
    registered as ``matrix_align/<name>`` (dashes as underscores)."""

    def make(
        hub: HubPolicy = "auto", judged: bool = True, refusal_detector: RefusalDetector = "ours"
    ) -> Task:
        return benchmark_task(name, hub=hub, judged=judged, refusal_detector=refusal_detector)

    make.__name__ = make.__qualname__ = name.replace("-", "_")
    make.__doc__ = doc
    return task(make)


advbench = _registered("advbench", "AdvBench harmful behaviours (paper).")
harmfulqa = _registered("harmfulqa", "HarmfulQA questions (paper).")
hh_harmless = _registered("hh-harmless", "Anthropic HH-RLHF harmless-base test dialogues (paper).")
pku_saferlhf = _registered(
    "pku-saferlhf", "PKU-SafeRLHF red-team prompts (paper; CC BY-NC 4.0, non-commercial)."
)
xstest = _registered(
    "xstest",
    "XSTest: safe prompts must be answered (over-refusal), unsafe contrast prompts refused.",
)


@task
def strongreject(
    hub: HubPolicy = "auto",
    judged: bool = True,
    refusal_detector: RefusalDetector = "ours",
    strongreject_prompt: Literal["ours", "official"] = "ours",
) -> Task:
    """StrongREJECT forbidden prompts, with the StrongREJECT rubric (``ours`` or the
    ``official`` prompt)."""
    return benchmark_task(
        "strongreject", hub=hub, judged=judged, refusal_detector=refusal_detector,
        strongreject_prompt=strongreject_prompt,
    )  # fmt: skip
