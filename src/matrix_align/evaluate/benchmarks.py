"""The benchmarks ``evaluate`` runs, mapped onto ``generate``'s data sources.

A benchmark *is* a built-in source of ``matrix_align.data.sources`` (same names, same
loaders: the hub when reachable, else the shipped sample), plus what evaluation needs on
top: which metrics it is scored with by default. Keeping the loaders in one place means an
evaluation and a training set built from the same name see the same rows.

Which metric applies to which item (``evaluate/metrics.py``) follows the item's own
``harmful`` flag (set by the loaders; on XSTest it is the row's ``unsafe`` label), so XSTest's
safe prompts are scored for helpfulness and its unsafe ones for harmlessness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from matrix_align.data.sources import SOURCES, HubPolicy, Limit, LoadedSource, load_source
from matrix_align.errors import MatrixAlignError, check_known
from matrix_align.folders.records import SourceRecord

Kind = Literal["harmful", "over-refusal", "helpful"]

# The metrics (evaluate/metrics.py) a benchmark scores by default, by name.
HARM = ("refusal", "pairwise", "harmlessness")


@dataclass(frozen=True)
class Benchmark:
    name: str  # the data source name
    kind: Kind
    metrics: tuple[str, ...]  # scored by default
    paper: bool = False  # one of the MATRIX paper's four harmlessness benchmarks

    @property
    def title(self) -> str:
        return SOURCES[self.name].title


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("hh-harmless", "harmful", HARM, paper=True),
        Benchmark("pku-saferlhf", "harmful", HARM, paper=True),
        Benchmark("advbench", "harmful", HARM, paper=True),
        Benchmark("harmfulqa", "harmful", HARM, paper=True),
        Benchmark("strongreject", "harmful", (*HARM, "strongreject")),
        Benchmark("harmbench", "harmful", HARM),
        Benchmark("xstest", "over-refusal", ("refusal", "harmlessness", "helpfulness")),
        Benchmark("vicuna-bench", "helpful", ("refusal", "mt-bench")),
        Benchmark("mt-bench", "helpful", ("refusal", "mt-bench")),
    )
}
PAPER_BENCHMARKS = tuple(name for name, b in BENCHMARKS.items() if b.paper)


def check_benchmarks(names: list[str]) -> list[str]:
    check_known(names, BENCHMARKS, "benchmark")
    if not names:
        raise MatrixAlignError("No benchmarks given.", hint=f"choose from: {', '.join(BENCHMARKS)}")
    return names


def is_harmful(record: SourceRecord) -> bool:
    return bool(record.metadata.get("harmful", True))


def turns(record: SourceRecord) -> list[str]:
    """The user turns of an item: MT-Bench has two (the second is a follow-up sent after
    the first answer); every other benchmark has one."""
    stored = record.metadata.get("turns")
    if isinstance(stored, list) and len(stored) > 1 and all(isinstance(t, str) for t in stored):
        return [record.prompt, *stored[1:]]
    return [record.prompt]


def load_benchmark(
    name: str, *, limit: Limit | None, hub: HubPolicy = "auto", shuffle: bool = False, seed: int = 0
) -> LoadedSource:
    check_benchmarks([name])
    return load_source(name, hub=hub, limit=limit, shuffle=shuffle, seed=seed)
