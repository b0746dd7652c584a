"""Where a result came from, recorded the same way everywhere: one function, ``provenance_record``,
builds the provenance that ``run.json`` (generate and evaluate), scene traces, exports and
model cards carry.

It holds what is needed to tell two results apart or to redo one:

- ``matrix_align``: this package's version, and ``python``;
- ``libraries``: versions of the libraries that shape outputs, read from the installed
  distributions' metadata (``importlib.metadata``), never by importing them: importing
  torch to learn its version would cost seconds and memory in every command;
- ``command``: the command line, with secrets scrubbed (``redact``);
- ``prompt_templates_sha256``: one hash over the scene prompt templates (file names and
  bytes, in name order). An edited template changes answers, so the hash is also part of
  what sample ids hash (``prompt_templates_sha256`` here is the single definition). A
  configuration that overrides templates (``--prompts``) or selects the paper profile's
  variants has its own hash (``config_templates_sha256``), and ``prompt_overrides`` names
  each override's sha256;
- ``datasets``: each source's origin and revision, where known (a hub dataset's commit, or
  the sha256 of a shipped sample or a user's file);
- ``model``: the model's identity: for a bundled embedded model the GGUF file's pinned
  sha256 (from ``llm.model_files``), for the openai backend the model asked for and the
  names the server reported in its answers.
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from matrix_align.redact import redact

PROMPTS_DIR = Path(__file__).parent / "simulation" / "prompts"
# The field of run.json (generate and evaluate) that names the templates a folder's samples
# were made with: a folder holds samples of one set of templates.
TEMPLATES_KEY = "prompt_templates_sha256"
# Distributions whose versions can change an answer, a dataset or a trained model.
KEY_LIBRARIES: tuple[str, ...] = (
    "openai",
    "pydantic",
    "jinja2",
    "datasets",
    "huggingface_hub",
    "transformers",
    "trl",
    "peft",
    "torch",
    "accelerate",
    "xllamacpp",
)


def package_version() -> str:
    from matrix_align import __version__

    return __version__


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of ``KEY_LIBRARIES`` (the ones not installed are left out)."""
    versions: dict[str, str] = {}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def templates_sha256(folder: Path) -> str:
    """sha256 over every ``*.j2`` in ``folder``, in name order: each file's name, a NUL, its
    bytes and a NUL, so moving text between two templates changes the hash too."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def prompt_templates_sha256() -> str:
    """The hash of the scene prompt templates this installation uses."""
    return templates_sha256(PROMPTS_DIR)


def config_templates_sha256(config: Any = None) -> str:
    """The hash of the templates a ``SimulationConfig`` renders: the default templates'
    (``prompt_templates_sha256``) unless it overrides some or selects the paper variants."""
    if config is None or not config.custom_templates():
        return prompt_templates_sha256()
    return config.templates_sha256()


def prompt_overrides(config: Any = None) -> dict[str, str]:
    """Each overridden template's name and the sha256 of its text (empty: none)."""
    prompts = getattr(config, "prompts", None) or {}
    return {name: hashlib.sha256(text.encode()).hexdigest() for name, text in prompts.items()}


def templates_mismatch(recorded: Any, config: Any = None) -> str | None:
    """Why samples recorded with template hash ``recorded`` (from a run.json; None: not
    recorded) cannot share a folder with samples made now with ``config``; None when they
    can."""
    current = config_templates_sha256(config)
    if recorded == current:
        return None
    if not recorded:
        return (
            "were made by an earlier matrix-align, before sample ids included the prompt templates"
        )
    return f"were made with other scene prompt templates ({str(recorded)[:12]}, now {current[:12]})"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed (the program by its name, not its path), secrets masked."""
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = Path(args[0]).name
    return redact(shlex.join(args))


def _unwrap(model: Any) -> Any:
    """The backend under the retry, rate-limit and accounting wrappers."""
    while hasattr(model, "inner"):
        model = model.inner
    return model


def model_identity(model: Any) -> dict[str, Any]:
    """What identifies ``model``'s weights, as far as this process can know it."""
    inner = _unwrap(model)
    identity: dict[str, Any] = {"name": str(getattr(model, "name", "") or "")}
    if hasattr(inner, "bundled"):  # the embedded backend
        if inner.bundled is not None:  # a bundled GGUF: the registry pins its hash
            bundled = inner.bundled
            identity.update(backend="embedded", file=bundled.filename, sha256=bundled.sha256)
        else:  # a user's GGUF: named, not hashed (gigabytes to read on every run)
            path = Path(str(getattr(inner, "model_path", "")))
            identity.update(backend="embedded", file=path.name, sha256=None)
    elif hasattr(inner, "reported_models"):  # openai: the server's own name for the model
        identity.update(
            backend="openai",
            requested=getattr(inner, "model", None),
            reported=sorted(inner.reported_models) or None,
        )
    return identity


def provenance_record(
    model: Any = None,
    *,
    datasets: dict[str, dict[str, Any]] | None = None,
    models: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    config: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record (see the module docstring). ``models`` names further models
    (judges, a selector) by role; ``config``, the ``SimulationConfig`` whose templates were
    used; ``extra`` adds fields (e.g. a trained model's base)."""
    data: dict[str, Any] = {
        "matrix_align": package_version(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "command": command_line(argv),
        TEMPLATES_KEY: config_templates_sha256(config),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if prompt_overrides(config):
        data["prompt_overrides"] = prompt_overrides(config)
    if datasets is not None:
        data["datasets"] = datasets
    if model is not None:
        data["model"] = model_identity(model)
    if models:
        data["models"] = {role: model_identity(m) for role, m in models.items()}
    return {**data, **extra}


def dataset_revisions(sources: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Origin and revision of each loaded source (``data.sources.LoadedSource``)."""
    return {
        source.name: {"origin": source.origin, "revision": getattr(source, "revision", None)}
        for source in sources
    }


def stamp(trace: Any, model: Any, config: Any = None) -> None:
    """Give a scene trace its provenance, unless it has one already."""
    if getattr(trace, "provenance", None) is None:
        trace.provenance = provenance_record(model, config=config)
