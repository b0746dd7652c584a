"""The dataset card (``README.md``) written beside every export, and pushed with it.

Its metadata is a ``huggingface_hub.DatasetCardData``, the Hub's own schema for the fields
the Hub and ``datasets`` read:

- ``configs``: one per format, the first marked default, so a bare
  ``datasets.load_dataset(folder_or_repo)`` loads it without a config name (without a
  default, ``datasets`` stops at "Config name is missing"); each lists its ``train`` file and,
  with ``export --test-fraction``, its ``test`` file. Parquet when it was written, else JSONL.
- ``license``: the sources' licence when they share one (CC BY-NC 4.0 whenever a source
  carries non-commercial terms), else ``other`` with ``license_name`` and ``license_link``
  (the Hub asks for both) pointing at the card's own list of sources and licences.
- ``task_categories``, ``language``, ``size_categories`` (the Hub's buckets) and
  ``source_datasets`` (the Hub ids of the built-in sources used).

The body says how the data was made: sources, model, settings, counts, audit, commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matrix_align.folders import SUMMARY

CARD_FILE = "README.md"
# SPDX-like names of the source licences -> the Hub's licence ids.
HUB_LICENSES = {
    "MIT": "mit",
    "Apache-2.0": "apache-2.0",
    "CC BY 4.0": "cc-by-4.0",
    "CC BY-NC 4.0": "cc-by-nc-4.0",
}
OTHER_LICENSE_NAME = "derived-from-sources"
OTHER_LICENSE_LINK = "README.md#sources-and-licences"
# The Hub's size buckets (upper bounds), as its dataset cards spell them.
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                   (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"))  # fmt: skip


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` bucket of ``rows``."""
    return next((name for bound, name in SIZE_CATEGORIES if rows < bound), "n>10M")


def licence_fields(licences: list[str | None], non_commercial: bool) -> dict[str, str]:
    """``license`` and, when it is ``other``, ``license_name`` and ``license_link``.
    ``None`` in ``licences`` is a user's file, whose licence the card cannot know."""
    if non_commercial:
        return {"license": "cc-by-nc-4.0"}
    ids = {HUB_LICENSES.get(licence) if licence else None for licence in licences}
    if len(ids) == 1 and None not in ids:
        return {"license": ids.pop()}  # type: ignore[dict-item]
    return {"license": "other", "license_name": OTHER_LICENSE_NAME,
            "license_link": OTHER_LICENSE_LINK}  # fmt: skip


def configs(files: dict[str, dict[str, Path]], test_files: dict[str, dict[str, Path]],
            dest: Path) -> list[dict[str, Any]]:  # fmt: skip
    """One ``datasets`` config per format (Parquet, else JSONL), the first the default."""
    out: list[dict[str, Any]] = []
    for fmt, kinds in files.items():
        kind = next((k for k in ("parquet", "jsonl") if k in kinds), None)
        if kind is None:
            continue  # only a save_to_disk folder: load_dataset cannot read it by files
        data_files = [{"split": "train", "path": kinds[kind].relative_to(dest).as_posix()}]
        if kind in test_files.get(fmt, {}):
            data_files.append(
                {"split": "test", "path": test_files[fmt][kind].relative_to(dest).as_posix()}
            )
        default = {"default": True} if not out else {}
        out.append({"config_name": fmt, "data_files": data_files, **default})
    return out


def run_summary(folder: Path) -> dict[str, Any]:
    """A generate run's summary.json ({} when there is none yet: the card says less)."""
    try:
        data = json.loads((folder / SUMMARY).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_dataset_card(
    dest: Path,
    title: str,
    export: dict[str, Any],
    summary: dict[str, Any],
    files: dict[str, dict[str, Path]],
    test_files: dict[str, dict[str, Path]] | None = None,
) -> Path:
    """Write ``dest/README.md`` for the export in ``dest``; returns its path."""
    from matrix_align.io import atomic_write_text

    path = dest / CARD_FILE
    atomic_write_text(path, dataset_card(title, export, summary, files, test_files or {}, dest))
    return path


def dataset_card(
    title: str,
    export: dict[str, Any],
    summary: dict[str, Any],
    files: dict[str, dict[str, Path]],
    test_files: dict[str, dict[str, Path]],
    dest: Path,
) -> str:
    """A dataset card from an export's provenance.json and the run's summary.json: sources
    and their licences (non-commercial terms spelled out), model, settings, counts, audit
    figures and the command lines that made it."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from matrix_align.data.sources import SOURCES

    datasets = (export.get("generation") or {}).get("datasets") or {}
    used = [SOURCES[name] for name in datasets if name in SOURCES]
    rows = export.get("rows") or {}
    test_rows = export.get("test_rows") or {}
    data = DatasetCardData(
        pretty_name=title,
        language=["en"],
        task_categories=["text-generation"],
        size_categories=[size_category(max([*rows.values(), 0]) + max([*test_rows.values(), 0]))],
        source_datasets=sorted({info.hub.path for info in used if info.hub}) or None,
        tags=["matrix-align", "alignment", "trl", "synthetic"],
        configs=configs(files, test_files, dest),
        **licence_fields(
            [SOURCES[name].license if name in SOURCES else None for name in datasets],
            any(info.notice for info in used),
        ),
    )
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(title, export, summary)}"))


def _body(title: str, export: dict[str, Any], summary: dict[str, Any]) -> str:
    from matrix_align.data.sources import SOURCES

    generation = export.get("generation") or {}
    model = generation.get("model") or {}
    datasets = generation.get("datasets") or {}
    used = [SOURCES[name] for name in datasets if name in SOURCES]
    licences = sorted({info.license for info in used})
    lines = [
        f"# {title}",
        "",
        "Alignment data generated with matrix-align (MATRIX: self-alignment by social scene "
        "simulation, ICML 2024, [arXiv 2402.05699](https://arxiv.org/abs/2402.05699)): each "
        "query was answered by the model after simulating the social scene it starts.",
        "",
        "## Sources and licences",
        "",
    ]
    for name, info in datasets.items():
        known = SOURCES.get(name)
        licence = known.license if known else "as the input file's"
        lines.append(
            f"- {name}: {info.get('origin')} (revision {info.get('revision') or 'unknown'}), "
            f"licence {licence}"
        )
    notices = [info.notice for info in used if info.notice]
    lines += ["", *(f"> **{n}**" for n in notices)] if notices else []
    lines += [
        "",
        f"Licences of the sources: {', '.join(licences) or 'see above'}. The generated text "
        "is derived from them; check each licence before use.",
        "",
        "## Model and settings",
        "",
        f"- model: `{model.get('name', '?')}`"
        + (f", GGUF sha256 `{model['sha256']}`" if model.get("sha256") else "")
        + (
            f", reported by the server as {', '.join(model['reported'])}"
            if model.get("reported")
            else ""
        ),
        f"- matrix-align {generation.get('matrix_align', '?')}, prompt templates sha256 "
        f"`{generation.get('prompt_templates_sha256', '?')}`",
        f"- simulation settings: `{json.dumps(summary.get('config') or {}, sort_keys=True)}`",
        "",
        "## Counts",
        "",
        *(f"- {fmt}: {rows} rows" for fmt, rows in (export.get("rows") or {}).items()),
        *(f"- {fmt}, test split: {n} rows" for fmt, n in (export.get("test_rows") or {}).items()),
        f"- dropped by the scene audit ({export.get('drop_flagged', '?')}): "
        f"{export.get('samples_dropped', 0)} samples",
    ]
    if export.get("test_fraction"):
        lines.append(
            f"- test split: {export['test_fraction']:g} of the samples (seed "
            f"{export.get('split_seed', 0)}), a sample's sub-step rows in the same split"
        )
    audit = summary.get("audit") or {}
    if audit:
        lines += [
            "",
            "## Scene audit (summary.json)",
            "",
            f"- matrix samples: {audit.get('matrix_samples')}, without the flags dropped by "
            f"default: {audit.get('without_dropped_flags')} "
            f"({audit.get('without_dropped_flags_fraction')})",
            *(f"- {flag}: {n}" for flag, n in (summary.get("audit_flags") or {}).items() if n),
        ]
    lines += ["", "## How it was made", ""]
    if generation.get("command"):
        lines.append(f"- generated with `{generation['command']}`")
    if (export.get("export") or {}).get("command"):
        lines.append(f"- exported with `{export['export']['command']}`")
    lines += [
        "",
        "Data of a MATRIX run can describe harmful scenarios (the simulated consequences); "
        "review it before training or publishing a model on it.",
        "",
    ]
    return "\n".join(lines)
