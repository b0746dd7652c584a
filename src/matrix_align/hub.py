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

import os
import re
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError, RunFailed

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
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
    dest: Path, repo: str, *, private: bool, summary: dict[str, Any], result: Any
) -> str:
    """Push the export folder ``dest`` (``result``: its ``ExportResult``; ``summary``: the
    run's summary.json), its dataset card rewritten to name ``repo``."""
    from matrix_align.data.card import write_dataset_card
    from matrix_align.data.export import PROVENANCE_FILE
    from matrix_align.io import read_json_object

    export = read_json_object(dest / PROVENANCE_FILE, "The export's provenance")
    write_dataset_card(dest, repo, export, summary, result.files, result.test_files)
    return push_files(
        folder_files(dest), repo, repo_type="dataset", private=private,
        message="matrix-align export",
    )  # fmt: skip


def push_model(output_dir: Path, weights_dir: Path, repo: str, *, private: bool) -> str:
    """Push the trained weights (``weights_dir``: the adapter, the full model or the merged
    one) at the repo's root, so ``from_pretrained(repo)`` loads them, with the model card
    and the training settings and log beside them. The files that name the base model by a
    local path are pushed naming it as the card does (``public_base``)."""
    import tempfile

    files = folder_files(weights_dir)
    for name in ("README.md", "train_config.yaml", "metrics.json", "loss_curve.json"):
        if (output_dir / name).is_file():
            files[name] = output_dir / name
    with tempfile.TemporaryDirectory() as scratch:
        files |= public_base(files, Path(scratch))
        return push_files(files, repo, repo_type="model", private=private,
                          message="matrix-align train")  # fmt: skip


# Where a trained folder names its base model: PEFT's adapter config, a transformers config,
# the run's own settings. Locally that is often a path (the converted bundled model in the
# cache), which is what loading needs here and means nothing, or leaks a home folder, on the
# Hub.
BASE_FIELDS = {
    "adapter_config.json": "base_model_name_or_path",
    "config.json": "_name_or_path",
    "train_config.yaml": "model",
}


def public_base(files: dict[str, Path], scratch: Path) -> dict[str, Path]:
    """Copies, written in ``scratch``, of the ``BASE_FIELDS`` files among ``files`` whose base
    model is a local path, naming it instead by the card's ``base_model`` (its Hub id), or by
    the folder's name when the card has none."""
    import json

    import yaml
    from huggingface_hub import metadata_load

    card = files.get("README.md")
    hub_id = (metadata_load(card) or {}).get("base_model") if card else None
    if not isinstance(hub_id, str) or _is_local_path(hub_id):
        hub_id = None  # not our card (PEFT's own names the local path)
    rewritten: dict[str, Path] = {}
    for name, key in BASE_FIELDS.items():
        if name not in files:
            continue
        text = files[name].read_text(encoding="utf-8")
        data = yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)
        value = data.get(key) if isinstance(data, dict) else None
        if not isinstance(value, str) or not _is_local_path(value):
            continue
        data[key] = hub_id or Path(value).name
        copy = scratch / name
        if name.endswith(".yaml"):
            copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        else:
            copy.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        rewritten[name] = copy
    return rewritten


def _is_local_path(value: str) -> bool:
    path = Path(value).expanduser()
    return path.is_absolute() or value.startswith((".", "~")) or path.exists()
