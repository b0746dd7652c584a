"""Sub-step rows: single calls of a MATRIX scene as training rows of their own.

The paper's released 30B set adds 6K such rows to its 12K (query, answer) rows, to teach the
model the simulation itself: each row is one call's prompt and the model's output. A scene
makes a few dozen calls at the paper's sizes, so every call of 6K scenes would be many times
the rest of the set (docs/generate.md); ``choose`` keeps a seeded sample of N instead.

Which calls qualify (``SUBSTEP_STAGES``): the calls that *are* the simulation.

- ``setup`` and ``roles``: who asks and why, the plan, who else is affected;
- ``action`` and ``reaction``: the asker and the other roles playing their parts (the
  asker's first move, round 0, is an ``action`` call too);
- ``modulate`` and ``memory``: the social modulator ruling on an action (feasible? who
  notices? what harm?) and folding old events into a summary;
- ``consequence``: the harms the scene recorded, summed up.

Left out, with the reason:

- ``initial``: the model's first answer, the one the scene exists to correct; as a row it
  would teach the unaligned answer.
- ``initial_summary`` and ``final``: the answer-writing calls, not the simulation. The final
  answer is already the sample's own (query, answer) row, and its prompt here carries the
  scene's lessons in a system prompt no user will send; the summary's input is the draft.
- Any call whose reply failed validation, that errored or that came back empty, and every
  re-ask (``attempt`` 2, whose prompt holds the invalid reply and a correction): they are not
  examples of the behaviour to learn. A decision that fell back had only invalid replies, so
  none of its calls qualify.

A row's id is its scene's sample id and the call's index (``<sample id>-<index>``), and its
``meta.parent_id`` names the scene, so a row can always be traced to its scene.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from typing import Any

from matrix_align.folders.records import ChatMessage
from matrix_align.folders.samples import SampleRecord
from matrix_align.simulation.trace import ModelCall, SceneTrace

SUBSTEP_STAGES: tuple[str, ...] = (
    "setup",
    "roles",
    "action",
    "reaction",
    "modulate",
    "memory",
    "consequence",
)


def qualifies(call: ModelCall) -> bool:
    """Whether a scene call becomes a sub-step row (see the module's docstring)."""
    return (
        call.stage in SUBSTEP_STAGES
        and call.attempt == 1
        and call.valid
        and not call.error
        and bool(call.output.strip())
        and bool(call.messages)
    )


def substep_id(parent_id: str, index: int) -> str:
    return f"{parent_id}-{index:03d}"


def _qualifying(record: SampleRecord) -> list[tuple[int, ModelCall]]:
    """(index in the trace, call) of each qualifying call of a matrix sample's scene."""
    if record.mode != "matrix" or not record.trace:
        return []
    trace = SceneTrace.model_validate_json(record.trace)
    return [(index, call) for index, call in enumerate(trace.calls) if qualifies(call)]


def qualifying_stages(record: SampleRecord) -> dict[str, str]:
    """The sub-step ids a sample would give, with their stages, without building the rows
    (what ``choose`` draws from)."""
    return {substep_id(record.id, index): call.stage for index, call in _qualifying(record)}


def substep_records(record: SampleRecord) -> list[SampleRecord]:
    """The qualifying calls of a matrix sample's scene, each as a prompt -> output sample.

    ``trace`` is left empty (the parent sample holds it; ``meta.parent_id`` points to it) so
    a dataset does not store each trace dozens of times.
    """
    out: list[SampleRecord] = []
    for index, call in _qualifying(record):
        prompt = [
            ChatMessage(role=m["role"], content=m["content"])  # type: ignore[arg-type]
            for m in call.messages
            if m.get("role") in ("system", "user", "assistant")
        ]
        meta = {
            "parent_id": record.id,
            "call_index": index,
            "stage": call.stage,
            "actor": call.actor,
            "round": call.round,
        }
        out.append(
            SampleRecord(
                id=substep_id(record.id, index),
                source=record.source,
                mode="substep",
                prompt=prompt,
                completion=[ChatMessage(role="assistant", content=call.output)],
                initial_response="",
                trace="",
                meta=meta,
            )
        )
    return out


def _rank(seed: int, row_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{row_id}".encode()).digest()


def choose(row_ids: Iterable[str], n: int, seed: int) -> set[str]:
    """A seeded uniform sample of at most ``n`` sub-step ids.

    Each id is ranked by a hash of (seed, id) and the ``n`` lowest are kept. That is a
    uniform random sample without replacement, and unlike shuffling a list it depends only
    on the set of ids, not on their order in the file; a dataset that grows (a resumed run)
    only swaps some chosen rows for new ones instead of drawing a new sample altogether.
    """
    return set(heapq.nsmallest(n, set(row_ids), key=lambda row_id: _rank(seed, row_id)))


def describe(info: dict[str, Any]) -> str:
    """One line on an export's sub-step rows (``ExportResult.substeps``): how many calls
    qualified, how many were kept, and of which stages."""
    stages = ", ".join(f"{stage} {n}" for stage, n in info["by_stage"].items()) or "none"
    if info.get("cap") is None:
        return f"sub-steps: all {info['kept']} qualifying scene calls ({stages})"
    return (
        f"sub-steps: {info['kept']} of {info['qualifying']} qualifying scene calls (--substeps "
        f"{info['cap']}, seed {info['seed']}; {stages})"
    )
