"""Re-rate the alternatives that stored declines suggest, without re-running any scene.

The alternative check (``check_alternative``) is the last call of a scene that declined.
This reads the declines of MATRIX traces already stored (an evaluation folder's
``results.jsonl`` or a generate folder's ``samples.jsonl``), asks the check again on each
decline as it was first written (before any drop), with the built-in template or a
replacement (``--prompts DIR`` holding ``alternative_check.j2``), and prints each ruling,
the rewrite of a dropped one, and how many were rated serious: a prompt variant is
compared on the same declines in minutes.

    python bench/alternative_check.py runs/effect-dev-default --entry matrix
    python bench/alternative_check.py runs/effect-dev-default --prompts my-prompts/
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

from matrix_align.data.export import iter_samples
from matrix_align.errors import MatrixAlignError
from matrix_align.folders import RESULTS, SAMPLES
from matrix_align.folders.results import current_answers, read_results
from matrix_align.llm.spec import BackendSpec
from matrix_align.simulation.replay import first_decline, recheck_alternative
from matrix_align.simulation.trace import SceneTrace


def stored_traces(folder: Path, entry: str | None) -> list[SceneTrace]:
    """The MATRIX traces of an evaluation folder (of ``entry``) or of a generate folder."""
    if (folder / RESULTS).exists():
        answers, _ = read_results(folder, with_traces=True)
        return [SceneTrace.model_validate(raw) for answer in current_answers(answers)
                if answer.system == "matrix" and entry in (None, answer.entry)
                for raw in answer.traces]  # fmt: skip
    if (folder / SAMPLES).exists():
        return [SceneTrace.model_validate_json(record.trace)
                for record in iter_samples(folder / SAMPLES) if record.trace]  # fmt: skip
    raise MatrixAlignError(f"{folder} holds no {RESULTS} or {SAMPLES}.")


async def recheck(traces: list[SceneTrace], spec: BackendSpec, prompts: Path | None) -> list:
    """(query, decline as first written, the new trace) for every trace that declined."""
    rechecked = []
    async with spec.open() as model:
        for trace in traces:
            decline = first_decline(trace)
            if decline is not None:
                copy = await recheck_alternative(trace, model, prompts=prompts or {})
                rechecked.append((trace.query, decline, copy))
    return rechecked


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", type=Path, nargs="+", help="evaluation or generate folders")
    p.add_argument("--entry", help="evaluation entry to read (default: every matrix entry)")
    p.add_argument("--prompts", type=Path, help="folder with a replacement alternative_check.j2")
    p.add_argument("--backend", default="embedded")
    p.add_argument("--model")
    p.add_argument("--parallel", type=int, default=2)
    args = p.parse_args(argv)
    try:
        traces = [t for folder in args.folders for t in stored_traces(folder, args.entry)]
        spec = BackendSpec(args.backend, model=args.model, parallel=args.parallel)
        rechecked = asyncio.run(recheck(traces, spec, args.prompts))
    except MatrixAlignError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for query, decline, trace in rechecked:
        ruling = trace.alternative
        print(f"[{ruling.harm}] {query[:100]}\n  decline: {decline[:300]}")
        print(f"  suggestion: {ruling.suggestion}\n  what follows: {ruling.what_follows}")
        if ruling.dropped:
            print(f"  rewritten: {trace.final_response[:300]}")
        print()
    harms = Counter(trace.alternative.harm for _, _, trace in rechecked)
    print(
        f"{len(rechecked)} declines: "
        + ", ".join(f"{k} {harms[k]}" for k in ("none", "minor", "serious"))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
