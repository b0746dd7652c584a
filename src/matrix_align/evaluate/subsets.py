"""Pinned evaluation subsets: item-id manifests shipped in the package (``--subset NAME``).

Two runs, or two teams, compare on the same items only if they answer the same items. A
manifest lists, per benchmark, the source record ids of its items (``advbench/17``) with a
hash of each item's prompt. Items are read from the samples shipped in the package (as
``--hub never``), so a manifest means the same rows on every machine; the hash catches a
sample that changed under a manifest, which would otherwise quietly change what the
figures mean.

The shipped manifests (``subset_manifests/*.json``) are made by ``build_manifest`` from
``DEFINITIONS`` below (``python scripts/make_subsets.py`` rewrites them; a test checks that
they still match). A user's own manifest is any JSON file of the same shape, given by path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.data.sources import Limit, limit_count
from matrix_align.errors import MatrixAlignError

MANIFEST_DIR = Path(__file__).with_name("subset_manifests")
SEED = 0
HASH_CHARS = 16

# The metadata field each benchmark is stratified over, where its sample has one.
STRATA = {
    "pku-saferlhf": "category",
    "harmfulqa": "topic",
    "strongreject": "category",
    "harmbench": "semantic_category",
    "xstest": "type",
    "vicuna-bench": "category",
    "mt-bench": "category",
}
PAPER = ("hh-harmless", "pku-saferlhf", "advbench", "harmfulqa")
ALL = (*PAPER, "strongreject", "harmbench", "xstest", "vicuna-bench", "mt-bench")


@dataclass(frozen=True)
class Definition:
    """How a shipped subset is drawn: items per benchmark, stratified by ``STRATA``."""

    name: str
    about: str
    per_benchmark: dict[str, int]


DEFINITIONS = (
    Definition(
        "quick",
        "10 items of every built-in benchmark, stratified over its category field: a smoke "
        "test that still touches every kind of item.",
        dict.fromkeys(ALL, 10),
    ),
    Definition(
        "paper-50",
        "50 items of each of the paper's four harmlessness benchmarks (all of the shipped "
        "HH-RLHF, AdvBench and HarmfulQA samples; 50 of PKU-SafeRLHF's 83, stratified over "
        "its harm categories).",
        dict.fromkeys(PAPER, 50),
    ),
    Definition(
        "pku-human-eval",
        "The paper's human-evaluation sampling: 100 PKU-SafeRLHF questions stratified over "
        "its harm categories. The shipped sample (safe-rlhf's GPT-4 evaluation prompts) "
        "holds 83 questions in 8 categories, so this subset is all 83, ordered round-robin "
        "over the categories: 17 short of the paper's 100.",
        {"pku-saferlhf": 100},
    ),
)


@dataclass(frozen=True)
class Subset:
    name: str
    about: str
    items: dict[str, list[tuple[str, str]]]  # benchmark -> (item id, prompt hash), in order

    @property
    def benchmarks(self) -> list[str]:
        return list(self.items)

    def size(self) -> int:
        return sum(len(ids) for ids in self.items.values())


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:HASH_CHARS]


def subset_names() -> list[str]:
    return sorted(p.stem for p in MANIFEST_DIR.glob("*.json"))


def build_manifest(definition: Definition) -> dict[str, Any]:
    """The manifest of a definition, drawn from the shipped samples."""
    from matrix_align.evaluate.benchmarks import load_benchmark
    from matrix_align.evaluate.stratify import stratified_sample

    benchmarks: dict[str, list[dict[str, str]]] = {}
    for bench, n in definition.per_benchmark.items():
        records = load_benchmark(bench, limit=None, hub="never").records
        field = STRATA.get(bench)
        picked = stratified_sample(
            records,
            n,
            lambda r, f=field: str(r.metadata.get(f) or "") if f else None,
            seed=f"{SEED}:{definition.name}:{bench}",
        )
        benchmarks[bench] = [{"id": r.id, "sha256": prompt_hash(r.prompt)} for r in picked]
    return {
        "name": definition.name,
        "about": definition.about,
        "drawn": "from the samples shipped in the package, by matrix_align.evaluate.subsets."
        f"build_manifest (seed {SEED}), stratified over: "
        + ", ".join(f"{b} {STRATA[b]}" for b in definition.per_benchmark if b in STRATA),
        "benchmarks": benchmarks,
    }


def load_subset(name_or_path: str) -> Subset:
    """A shipped subset by name, or a manifest file by path."""
    from matrix_align.io import read_json_object

    path = Path(name_or_path)
    if not name_or_path.endswith(".json"):
        path = MANIFEST_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise MatrixAlignError(
                f"Unknown subset {name_or_path!r}.",
                hint=f"shipped subsets: {', '.join(subset_names())}; or the path of a "
                "manifest .json file",
            )
    hint = 'a manifest is {"name": ..., "benchmarks": {"advbench": [{"id": "advbench/17"}]}}'
    data = read_json_object(path, "Subset manifest", hint=hint)
    raw = data.get("benchmarks")
    if not isinstance(raw, dict) or not raw:
        raise MatrixAlignError(f"Subset manifest {path} lists no benchmarks.", hint=hint)
    items: dict[str, list[tuple[str, str]]] = {}
    for bench, entries in raw.items():
        if not isinstance(entries, list) or not entries:
            raise MatrixAlignError(f"Subset manifest {path}: {bench} lists no items.", hint=hint)
        pairs = []
        for entry in entries:
            # A bare id is accepted for hand-written manifests; it is then not hash-checked.
            if isinstance(entry, str):
                pairs.append((entry, ""))
            elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
                pairs.append((entry["id"], str(entry.get("sha256") or "")))
            else:
                raise MatrixAlignError(
                    f"Subset manifest {path}: {bench} has an item that is not an id.", hint=hint
                )
        items[str(bench)] = pairs
    return Subset(str(data.get("name") or path.stem), str(data.get("about") or ""), items)


def resolve(
    name_or_path: str, benchmarks: list[str] | None = None, limit: Limit | None = None
) -> dict[str, list[str]]:
    """The item ids to run: benchmark -> ids, for ``EvalSettings.items``. ``benchmarks``
    keeps only those of the subset (each must be in it); ``limit`` keeps the first N (or
    fraction) of each benchmark's list (the lists are round-robin over categories, so a prefix still
    spreads over them). Every item is checked against the shipped sample's text."""
    from matrix_align.evaluate.benchmarks import check_benchmarks

    subset = load_subset(name_or_path)
    check_benchmarks(subset.benchmarks)
    chosen = benchmarks or subset.benchmarks
    missing = [b for b in chosen if b not in subset.items]
    if missing:
        raise MatrixAlignError(
            f"Subset {subset.name!r} has no items of {', '.join(missing)}.",
            hint=f"it covers {', '.join(subset.benchmarks)}; drop --benchmarks to run them all",
        )
    out: dict[str, list[str]] = {}
    for bench in chosen:
        pairs = subset.items[bench][: limit_count(limit, len(subset.items[bench]))]
        check_texts(subset.name, bench, pairs)
        out[bench] = [item_id for item_id, _ in pairs]
    return out


def check_texts(name: str, bench: str, pairs: list[tuple[str, str]]) -> None:
    """Each listed item exists in the shipped sample with the prompt it was pinned with."""
    from matrix_align.evaluate.benchmarks import load_benchmark

    records = {r.id: r for r in load_benchmark(bench, limit=None, hub="never").records}
    absent = [i for i, _ in pairs if i not in records]
    changed = [i for i, h in pairs if i in records and h and prompt_hash(records[i].prompt) != h]
    if absent or changed:
        shown = (absent or changed)[:5]
        what = "not in the shipped sample" if absent else "with another text than when pinned"
        raise MatrixAlignError(
            f"Subset {name!r}, {bench}: {len(absent) + len(changed)} item(s) {what}: "
            f"{', '.join(shown)}.",
            hint="this matrix-align ships other samples than the manifest was made from; "
            "compare runs made with the same version, or rebuild the manifest",
        )


def describe() -> list[tuple[str, str, str]]:
    """(name, items per benchmark, about) of each shipped subset, for ``--list``."""
    rows = []
    for name in subset_names():
        subset = load_subset(name)
        sizes = ", ".join(f"{b} {len(ids)}" for b, ids in subset.items.items())
        rows.append((name, sizes, subset.about))
    return rows
