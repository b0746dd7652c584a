"""``generate --dry-run``: the plan of a dataset run and what it will cost (see estimate.py).

Groups are the sources in their modes, as planned; items already in the folder's
``samples.jsonl`` are not run again, so they are not counted, and their recorded usage per
mode is the estimate for the rest of that mode.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from matrix_align.data.generate import ANSWERERS, Plan, WorkItem
from matrix_align.estimate import CostEstimate, Line, Section, measured, rehearse
from matrix_align.folders import SAMPLES
from matrix_align.folders.store import read_jsonl
from matrix_align.simulation.config import SimulationConfig


def estimate_generate(
    plan: Plan, config: SimulationConfig, output: Path, *, backend: str
) -> CostEstimate:
    done: set[str] = set()
    usage_by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, record in read_jsonl(output / SAMPLES):
        if isinstance(record.get("id"), str) and record["id"] not in done:
            done.add(record["id"])
            usage = (record.get("meta") or {}).get("generation", {}).get("usage")
            if isinstance(usage, dict):
                usage_by_mode[str(record.get("mode"))].append(usage)
    groups: dict[tuple[str, str], list[WorkItem]] = {}
    for item in plan.items:
        groups.setdefault((item.record.source, item.mode), []).append(item)
    section = Section("samples")
    for (source, mode), items in groups.items():
        pending = [item for item in items if item.id not in done]
        answerer = ANSWERERS[mode]
        unit = measured(usage_by_mode.get(mode, []))
        if unit is None:
            unit, _ = rehearse(
                pending or items,
                lambda item, model, answer=answerer: answer(item, model, config),
                scripted=backend == "scripted",
            )
        section.lines.append(Line(f"{source}:{mode}", len(items), len(pending), unit))
    modes = sorted({mode for _, mode in groups})
    plan_lines = [
        f"plan: {len(plan.items)} samples from {len(groups)} source(s) in mode(s) "
        f"{', '.join(modes)}; {len(plan.items) - sum(ln.pending for ln in section.lines)} "
        f"already in {output / SAMPLES}",
        f"settings: {config.n_roles} roles, {config.n_steps} steps, reaction depth "
        f"{config.reaction_depth}, max tokens {config.max_tokens} "
        f"(final {config.final_max_tokens})",
    ]
    return CostEstimate([section], plan=plan_lines)
