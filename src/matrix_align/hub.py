"""Publishing to the Hugging Face Hub: ``export --push-to-hub`` (a dataset with its card)
and ``train --push-to-hub`` (the adapter or merged model with its model card).

``check_push_options`` runs before any work (``--private`` without a push is refused) and
``check_can_push`` with it: a push that can only fail (offline mode, the
client missing, the hub unreachable, a malformed repo id) is one clear error up front, not
a traceback after an hour of training. Uploads go through ``huggingface_hub.HfApi``
(``create_repo`` then ``upload_folder``); the token is the client's own (``HF_TOKEN`` or
``huggingface-cli login``), never read or stored here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from matrix_align.errors import MatrixAlignError, RunFailed

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
CARD_FILE = "README.md"
_TRUE = {"1", "true", "yes", "on"}


def check_push_options(repo: str | None, *, private: bool) -> None:
    """The push options of ``export`` and ``train``, before any work: ``--private`` alone
    would be ignored while the user believes something is kept private, so it is refused;
    a push is checked by ``check_can_push``."""
    if repo is None:
        if private:
            raise MatrixAlignError(
                "--private applies to --push-to-hub, which was not given: nothing is pushed.",
                hint="add --push-to-hub OWNER/NAME to push to a private repository, or drop "
                "--private (the files are written locally only)",
            )
        return
    check_can_push(repo)


def check_can_push(repo: str, what: str = "--push-to-hub") -> None:
    """Everything that would make a push fail, checked before the work that precedes it."""
    if not REPO_ID.match(repo) or len(repo) > 96:
        raise MatrixAlignError(
            f"{what} {repo!r} is not a Hub repository id.",
            hint="write OWNER/NAME, e.g. me/matrix-sft",
        )
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise MatrixAlignError(
            f"{what} needs the Hugging Face Hub, but HF_HUB_OFFLINE is set.",
            hint=f"unset HF_HUB_OFFLINE (or drop {what} and upload the folder later)",
        )
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise MatrixAlignError(
            f"{what} needs the huggingface_hub package.", hint="pip install huggingface_hub"
        ) from None
    from matrix_align.data.sources import hub_status

    reachable, reason = hub_status()
    if not reachable:
        raise MatrixAlignError(
            f"{what}: the Hugging Face Hub is not reachable ({reason}).",
            hint=f"check the network or HF_ENDPOINT (or drop {what} and upload the folder later)",
        )


def push_files(
    files: dict[str, Path], repo: str, *, repo_type: str, private: bool, message: str
) -> str:
    """Create ``repo`` if needed and add ``files`` (path in the repo -> local file) in one
    commit, so a reader never sees weights without their card; returns the repo's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from matrix_align.redact import redact

    api = HfApi()
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
        for name, path in sorted(files.items())
    ]
    try:
        url = api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True)
        api.create_commit(
            repo_id=repo, repo_type=repo_type, operations=operations, commit_message=message
        )
    except Exception as exc:  # auth, permissions, quota, network: the hub's own words
        # The training or export before the push did run, so this is a failed run (exit 1),
        # not bad input; what to push is on disk for a later upload.
        raise RunFailed(
            f"Pushing to {repo} failed: {redact(str(exc))[:300]}",
            hint="log in with `huggingface-cli login` (or set HF_TOKEN) with write access",
        ) from None
    return str(url)


def folder_files(folder: Path, prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, Path]:
    """Every file under ``folder`` by its path in the repo (``prefix`` + relative path),
    leaving out top-level entries named in ``skip``."""
    return {
        prefix + path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).parts[0] not in skip
    }


def push_dataset(
    dest: Path, repo: str, *, private: bool, summary: dict[str, Any], files: dict[str, Any]
) -> str:
    """Write the dataset card into the export folder ``dest`` and push the folder."""
    from matrix_align.data.export import PROVENANCE_FILE
    from matrix_align.io import atomic_write_text, read_json_object

    export = read_json_object(dest / PROVENANCE_FILE, "The export's provenance")
    atomic_write_text(dest / CARD_FILE, dataset_card(repo, export, summary, files))
    return push_files(
        folder_files(dest), repo, repo_type="dataset", private=private,
        message="matrix-align export",
    )  # fmt: skip


def push_model(output_dir: Path, weights_dir: Path, repo: str, *, private: bool) -> str:
    """Push the trained weights (``weights_dir``: the adapter, the full model or the merged
    one) at the repo's root, so ``from_pretrained(repo)`` loads them, with the model card
    and the training settings and log beside them."""
    files = folder_files(weights_dir)
    for name in (CARD_FILE, "train_config.yaml", "metrics.json", "loss_curve.json"):
        if (output_dir / name).is_file():
            files[name] = output_dir / name
    return push_files(files, repo, repo_type="model", private=private, message="matrix-align train")


# --- the dataset card ---------------------------------------------------------------------


def dataset_card(
    repo: str, export: dict[str, Any], summary: dict[str, Any], files: dict[str, dict[str, Path]]
) -> str:
    """A dataset card from an export's provenance.json and the run's summary.json: sources
    and their licences (non-commercial terms spelled out), model, settings, counts, audit
    figures and the command lines that made it."""
    from matrix_align.data.sources import SOURCES

    generation = export.get("generation") or {}
    model = generation.get("model") or {}
    datasets = generation.get("datasets") or {}
    used = [SOURCES[name] for name in datasets if name in SOURCES]
    licences = sorted({info.license for info in used})
    header: dict[str, Any] = {
        "license": "cc-by-nc-4.0" if any(info.notice for info in used) else "other",
        "tags": ["matrix-align", "alignment", "trl"],
        "configs": [
            {
                "config_name": fmt,
                "data_files": [{"split": "train", "path": f"parquet/{fmt}.parquet"}],
            }
            for fmt, kinds in files.items()
            if "parquet" in kinds
        ],
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).strip(),
        "---",
        "",
        f"# {repo}",
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
        f"- dropped by the scene audit ({export.get('drop_flagged', '?')}): "
        f"{export.get('samples_dropped', 0)} samples",
    ]
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
