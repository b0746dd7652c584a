"""TRL-ready exports of a generate run: JSONL, Parquet and a ``datasets`` folder.

Three views of the same samples, with TRL's documented column names so ``SFTTrainer`` and
``DPOTrainer`` take them as they are (column lists in ``records.FORMAT_COLUMNS``):

- ``prompt_completion``: conversational ``prompt`` / ``completion`` (SFT);
- ``messages``: one ``messages`` list per sample (SFT, language-modelling style);
- ``preference``: ``prompt`` / ``chosen`` (MATRIX answer) / ``rejected`` (first answer), for
  matrix samples whose two answers differ (DPO and friends).

Every view also has ``id``, ``source``, ``mode``, ``trace`` and ``meta`` (JSON strings),
which trainers ignore. ``--include-substeps`` adds each qualifying scene call of the matrix
samples (``data.substeps``: the simulation's own calls, valid first attempts only) as a
``substep`` prompt -> output row to the two SFT views; ``--substeps N`` keeps a seeded
sample of N of them instead of all.

The scene audit (``simulation.audit``) decides what is left out: a matrix sample carrying a
flag of ``drop_flagged`` (default ``DROP_BY_DEFAULT``, the flags that make its (query,
answer) row wrong as training data) is dropped from every view, its sub-steps with it; and
a sample whose final answer is unsafe or worse than its first never becomes a preference
pair (``records.pair_withheld``), whatever is dropped. A sample written before the audit
is audited from its stored trace.

Everything streams from ``samples.jsonl`` (a run may hold thousands of large traces), and
each file is written beside its final name and renamed into place, so an interrupted export
never leaves a half-written dataset where a trainer would pick it up.

``test_fraction`` holds a seeded share of the kept samples out as a test split, written
under ``<type>/test/`` (where training never looks for its data); a sample's sub-step rows go
to its split, so no scene is on both sides. A dataset card (``data.card``) is written beside
every export, so a copied or pushed folder loads with ``datasets.load_dataset(folder)``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.data.card import run_summary, write_dataset_card
from matrix_align.data.records import (
    EXPORT_FORMATS,
    EXTRA_COLUMNS,
    FORMAT_COLUMNS,
    messages_row,
    pair_withheld,
    preference_row,
    prompt_completion_row,
)
from matrix_align.data.substeps import choose, qualifying_stages, substep_records
from matrix_align.errors import MatrixAlignError
from matrix_align.folders import RUN, SAMPLES
from matrix_align.folders.samples import SampleRecord, sample_flags
from matrix_align.folders.store import DirectoryLock, dumps_line, read_jsonl
from matrix_align.io import atomic_write_json, temp_beside
from matrix_align.provenance import provenance_record
from matrix_align.simulation.audit import DROP_BY_DEFAULT, check_flags

FILE_TYPES: tuple[str, ...] = ("jsonl", "parquet", "hf")
EXPORT_DIR = "exports"
TEST_DIR = "test"  # <type>/test/: the --test-fraction split
# Beside the exported files: how they were made (matrix_align.provenance), the export's own
# record and the generation run's (from its run.json), so a copied export keeps its origin.
PROVENANCE_FILE = "provenance.json"
_BATCH_ROWS = 256  # Parquet row-group batch: bounds memory with large traces
_MESSAGE_LIST_COLUMNS = ("prompt", "completion", "messages", "chosen", "rejected")


@dataclass
class ExportResult:
    files: dict[str, dict[str, Path]] = field(default_factory=dict)  # format -> type -> path
    rows: dict[str, int] = field(default_factory=dict)  # format -> row count
    # With a test fraction: the test split's files and rows, as ``files`` and ``rows``.
    test_files: dict[str, dict[str, Path]] = field(default_factory=dict)
    test_rows: dict[str, int] = field(default_factory=dict)
    card: Path | None = None  # the dataset card beside the export
    skipped: int = 0  # stored lines that are not valid sample records
    drop_flagged: tuple[str, ...] = ()  # the flags whose samples were left out
    dropped: int = 0  # samples left out of every view by ``drop_flagged``
    dropped_by_flag: dict[str, int] = field(default_factory=dict)  # flag -> samples it dropped
    pairs_withheld: int = 0  # kept samples with no preference pair (``pair_withheld``)
    # Sub-step rows (``data.substeps``), when they were asked for: how many calls qualified,
    # the cap and seed of the sample, and how many of each stage were kept.
    substeps: dict[str, Any] | None = None

    def filter_summary(self) -> dict[str, Any]:
        """What the audit left out, for summary.json and the command's report."""
        return {
            "drop_flagged": ",".join(self.drop_flagged) or "none",
            "samples_dropped": self.dropped,
            "preference_pairs_withheld": self.pairs_withheld,
        }


def parse_drop_flags(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``--drop-flagged``: None means ``DROP_BY_DEFAULT``, ``none`` keeps every row, else
    comma-separated flag names (validated: an unknown name lists the known ones)."""
    if value is None:
        return DROP_BY_DEFAULT
    parts = [value] if isinstance(value, str) else list(value)
    names = [n for part in parts for n in part.split(",")]
    if [n.strip().lower() for n in names if n.strip()] == ["none"]:
        return ()
    try:
        return tuple(dict.fromkeys(check_flags(names)))
    except ValueError as exc:
        raise MatrixAlignError(
            f"Bad --drop-flagged: {exc}.",
            hint="give flag names separated by commas, or none to keep every row",
        ) from None


def columns(fmt: str) -> tuple[str, ...]:
    """The exact column order of an export format."""
    return FORMAT_COLUMNS[fmt] + EXTRA_COLUMNS


def iter_samples(
    samples_path: Path,
    counter: list[int] | None = None,
    audited: Mapping[str, list[str]] | None = None,
) -> Iterator[SampleRecord]:
    """Valid sample records of a run, first occurrence of each id only. ``audited`` holds
    the flags of samples written before the audit (id -> flags), filled in here."""
    seen: set[str] = set()
    for _, raw in read_jsonl(samples_path):
        try:
            record = SampleRecord.model_validate(raw)
        except ValueError:
            if counter is not None:
                counter[0] += 1
            continue
        if record.id not in seen:
            seen.add(record.id)
            if record.flags is None and audited is not None and record.id in audited:
                record.flags = list(audited[record.id])
            yield record


def iter_rows(
    samples_path: Path,
    fmt: str,
    *,
    include_substeps: bool = False,
    with_traces: bool = True,
    drop_flagged: Sequence[str] = (),
    audited: Mapping[str, list[str]] | None = None,
    substep_ids: Collection[str] | None = None,
    test_ids: Collection[str] | None = None,
    test: bool = False,
) -> Iterator[dict[str, Any]]:
    """The rows of one export format, in sample order (substeps right after their scene),
    without the samples that carry a flag of ``drop_flagged``. ``substep_ids`` limits the
    sub-step rows to those ids (the seeded sample of ``--substeps N``); None keeps all.
    ``test_ids`` splits the samples: the rows of the others, or with ``test`` of those."""
    if fmt not in FORMAT_COLUMNS:
        raise MatrixAlignError(
            f"Unknown export format {fmt!r}.", hint=f"formats: {', '.join(EXPORT_FORMATS)}"
        )
    for record in iter_samples(samples_path, audited=audited):
        if drop_flagged and set(sample_flags(record)) & set(drop_flagged):
            continue
        if test_ids is not None and (record.id in test_ids) != test:
            continue
        if fmt == "preference":
            row = preference_row(record, with_trace=with_traces)
            if row is not None:
                yield row
            continue
        make = prompt_completion_row if fmt == "prompt_completion" else messages_row
        yield make(record, with_trace=with_traces)
        if include_substeps:
            for sub in substep_records(record):
                if substep_ids is None or sub.id in substep_ids:
                    yield make(sub, with_trace=with_traces)


def arrow_schema(fmt: str) -> Any:
    """The Parquet schema of a format: chat columns are lists of {role, content} structs."""
    import pyarrow as pa

    message_list = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    return pa.schema(
        [
            (name, message_list if name in _MESSAGE_LIST_COLUMNS else pa.string())
            for name in columns(fmt)
        ]
    )


def hf_features(fmt: str) -> Any:
    """The ``datasets`` Features of a format (the same types as ``arrow_schema``)."""
    import datasets

    message_list = datasets.List(
        {"role": datasets.Value("string"), "content": datasets.Value("string")}
    )
    return datasets.Features(
        {
            name: message_list if name in _MESSAGE_LIST_COLUMNS else datasets.Value("string")
            for name in columns(fmt)
        }
    )


def _ordered(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    return {name: row[name] for name in columns(fmt)}


def _write_jsonl(rows: Iterator[dict[str, Any]], fmt: str, path: Path) -> int:
    tmp = temp_beside(path)
    count = 0
    with tmp.open("wb") as handle:
        for row in rows:
            handle.write(dumps_line(_ordered(row, fmt)))
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


def _write_parquet(rows: Iterator[dict[str, Any]], fmt: str, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(fmt)
    tmp = temp_beside(path)
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(_ordered(row, fmt))
            if len(batch) >= _BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch:  # an empty dataset keeps its schema with no row group at all
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    os.replace(tmp, path)
    return count


def _hf_rows(samples_path: str, fmt: str, options: dict[str, Any]):  # noqa: ANN202
    for row in iter_rows(Path(samples_path), fmt, **options):
        yield _ordered(row, fmt)


def _write_hf(samples_path: Path, fmt: str, path: Path, options: dict[str, Any]) -> int:
    """``datasets.Dataset.save_to_disk``. Built with ``from_generator`` (streams to Arrow)
    into a private, throw-away cache folder: the shared HF cache would key the build by the
    generator's code and arguments, and could hand back a stale dataset after more samples
    were appended to the same file."""
    import datasets
    from datasets.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    features = hf_features(fmt)
    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()  # a library call should not draw progress bars of its own
    work = Path(tempfile.mkdtemp(prefix=".hf-build-", dir=path.parent))
    try:
        has_rows = next(iter_rows(samples_path, fmt, **options), None) is not None
        if has_rows:
            dataset = datasets.Dataset.from_generator(
                _hf_rows,
                features=features,
                cache_dir=str(work / "cache"),
                gen_kwargs={"samples_path": str(samples_path), "fmt": fmt, "options": options},
            )
        else:
            dataset = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
        staged = work / "dataset"
        # One shard at least: an empty dataset saved with zero shards does not load back.
        dataset.save_to_disk(str(staged), num_shards=None if has_rows else 1)
        count = len(dataset)
        del dataset
        old = path.with_name(path.name + ".old")
        if path.exists():
            os.replace(path, old)
        os.replace(staged, path)
        shutil.rmtree(old, ignore_errors=True)
        return count
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not bars_were_off:
            enable_progress_bars()


def export_samples(
    samples_path: Path | str,
    dest: Path | str,
    *,
    formats: Sequence[str] = EXPORT_FORMATS,
    file_types: Sequence[str] = FILE_TYPES,
    include_substeps: bool = False,
    with_traces: bool = True,
    drop_flagged: Sequence[str] = DROP_BY_DEFAULT,
    substeps: int | None = None,
    substep_seed: int = 0,
    test_fraction: float | None = None,
    title: str | None = None,
) -> ExportResult:
    """Write ``dest/<type>/<format>.{jsonl,parquet}`` and ``dest/hf/<format>/``, leaving out
    the samples flagged with any of ``drop_flagged`` (see the module's docstring), and the
    dataset card ``dest/README.md`` (headed ``title``, by default the run folder's name).

    ``substeps=N`` adds at most N sub-step rows in all (it implies ``include_substeps``),
    chosen by ``substeps.choose`` with ``substep_seed`` among the qualifying calls of the
    samples kept. ``test_fraction`` holds that share of the kept samples out, drawn with
    the same seed, into ``dest/<type>/test/``."""
    samples_path = Path(samples_path)
    if not samples_path.exists():
        raise MatrixAlignError(
            f"No samples to export: {samples_path} does not exist.",
            hint="run `matrix-align generate --output FOLDER` first, and export that folder",
        )
    for fmt in formats:
        if fmt not in FORMAT_COLUMNS:
            raise MatrixAlignError(
                f"Unknown export format {fmt!r}.", hint=f"formats: {', '.join(EXPORT_FORMATS)}"
            )
    for kind in file_types:
        if kind not in FILE_TYPES:
            raise MatrixAlignError(
                f"Unknown export file type {kind!r}.", hint=f"types: {', '.join(FILE_TYPES)}"
            )
    if substeps is not None and (isinstance(substeps, bool) or substeps < 1):
        raise MatrixAlignError(
            f"Bad --substeps {substeps!r}: it must be a positive whole number.",
            hint="give the most sub-step rows to keep, e.g. --substeps 6000",
        )
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise MatrixAlignError(
            f"Bad --test-fraction {test_fraction!r}: it must be between 0 and 1.",
            hint="give the share of samples to hold out, e.g. --test-fraction 0.1",
        )
    dest = Path(dest)
    with DirectoryLock(dest, hint="wait for the other export (or generate run) to finish"):
        return _export_locked(
            samples_path, dest, formats=formats, file_types=file_types,
            include_substeps=include_substeps or substeps is not None, with_traces=with_traces,
            drop_flagged=drop_flagged, substeps=substeps, substep_seed=substep_seed,
            test_fraction=test_fraction, title=title or samples_path.parent.name,
        )  # fmt: skip


def test_split(ids: Sequence[str], fraction: float, seed: int) -> frozenset[str]:
    """The seeded share ``fraction`` of ``ids`` held out for testing: at least one sample,
    and never all of them (with two or more), so both splits have rows."""
    if not ids:
        return frozenset()
    n = min(max(1, round(fraction * len(ids))), max(1, len(ids) - 1))
    return frozenset(random.Random(seed).sample(sorted(ids), n))


def _export_locked(
    samples_path: Path,
    dest: Path,
    *,
    formats: Sequence[str],
    file_types: Sequence[str],
    include_substeps: bool,
    with_traces: bool,
    drop_flagged: Sequence[str],
    substeps: int | None,
    substep_seed: int,
    test_fraction: float | None,
    title: str,
) -> ExportResult:
    drop = tuple(check_flags(drop_flagged))
    seed = substep_seed  # the export's one seed: the sub-step sample and the test split
    result = ExportResult(drop_flagged=drop)
    counter = [0]
    audited: dict[str, list[str]] = {}  # samples written before the audit: audited once
    dropped: Counter[str] = Counter()
    candidates: dict[str, str] = {}  # qualifying sub-step id -> its stage
    kept: list[str] = []  # the ids of the samples exported
    seen = 0
    for record in iter_samples(samples_path, counter):
        seen += 1
        flags = sample_flags(record)
        if record.flags is None and flags:
            audited[record.id] = flags
        hits = [flag for flag in drop if flag in flags]
        if hits:
            result.dropped += 1
            dropped.update(hits)
            continue  # its sub-steps go with it
        kept.append(record.id)
        if pair_withheld(record.model_copy(update={"flags": flags})):
            result.pairs_withheld += 1
        if include_substeps:
            candidates.update(qualifying_stages(record))
    result.skipped = counter[0]
    if not seen and samples_path.stat().st_size > 0:
        raise MatrixAlignError(
            f"{samples_path} holds no sample records, so it is not a `generate` run.",
            hint="export a `matrix-align generate --output` folder or its samples.jsonl",
        )
    result.dropped_by_flag = {flag: dropped[flag] for flag in drop if dropped[flag]}
    chosen = set(candidates) if substeps is None else choose(candidates, substeps, substep_seed)
    if include_substeps:
        result.substeps = {
            "qualifying": len(candidates),
            "kept": len(chosen),
            "cap": substeps,
            "seed": substep_seed if substeps is not None else None,
            "by_stage": dict(sorted(Counter(candidates[i] for i in chosen).items())),
        }
    options: dict[str, Any] = {
        "include_substeps": include_substeps,
        "with_traces": with_traces,
        "drop_flagged": drop,
        "audited": audited,
        # All qualifying rows need no id list; a sample is the same set for every file.
        "substep_ids": None if substeps is None else frozenset(chosen),
        "test_ids": None if test_fraction is None else test_split(kept, test_fraction, seed),
    }
    splits = [(False, result.files, result.rows)]
    if test_fraction is not None:
        splits.append((True, result.test_files, result.test_rows))
    for test, files, counts in splits:
        for fmt in formats:
            files[fmt] = {}
            for kind in file_types:
                folder = dest / kind / TEST_DIR if test else dest / kind
                folder.mkdir(parents=True, exist_ok=True)
                split_options = {**options, "test": test}
                if kind == "hf":
                    path = folder / fmt
                    count = _write_hf(samples_path, fmt, path, split_options)
                else:
                    path = folder / f"{fmt}.{kind}"
                    rows = iter_rows(samples_path, fmt, **split_options)
                    writer = _write_jsonl if kind == "jsonl" else _write_parquet
                    count = writer(rows, fmt, path)
                files[fmt][kind] = path
                counts[fmt] = count
    if test_fraction is None:  # a split of an earlier export is not this one's
        for kind in FILE_TYPES:
            shutil.rmtree(dest / kind / TEST_DIR, ignore_errors=True)
    export = {
        "export": provenance_record(),
        "generation": _run_provenance(samples_path.parent),
        "rows": result.rows,
        **({"test_rows": result.test_rows, "test_fraction": test_fraction,
            "split_seed": seed} if test_fraction is not None else {}),
        **result.filter_summary(),
        **({"substeps": result.substeps} if result.substeps is not None else {}),
    }  # fmt: skip
    atomic_write_json(dest / PROVENANCE_FILE, export)
    result.card = write_dataset_card(
        dest, title, export, run_summary(samples_path.parent), result.files, result.test_files
    )
    return result


def _json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file's content; None when it is missing or not a readable object
    (provenance is best effort: its absence never stops an export or a training)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_provenance(folder: Path) -> dict[str, Any] | None:
    """The provenance in a generate folder's run.json, if any."""
    found = (_json_object(folder / RUN) or {}).get("provenance")
    return found if isinstance(found, dict) else None


def find_export_provenance(path: Path | str, levels: int = 3) -> dict[str, Any] | None:
    """The ``provenance.json`` of the export that ``path`` (a file or folder of it) is
    part of, looking up to ``levels`` folders up; None when there is none."""
    folder = Path(path).resolve()
    folder = folder if folder.is_dir() else folder.parent
    for candidate in [folder, *folder.parents][: levels + 1]:
        if (candidate / PROVENANCE_FILE).is_file():
            return _json_object(candidate / PROVENANCE_FILE)
    return None


def export_run(output: Path | str, **options: Any) -> ExportResult:
    """Export a generate run folder into ``OUTPUT/exports``."""
    output = Path(output)
    return export_samples(output / SAMPLES, output / EXPORT_DIR, **options)
