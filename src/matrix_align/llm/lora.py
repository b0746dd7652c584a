"""LoRA adapters in GGUF, as llama.cpp loads them: finding one and the base it belongs to.

``matrix-align train`` writes its adapter twice: in PEFT's format (``adapter/``, for
transformers and vLLM) and as ``adapter/adapter_model.gguf`` (train/gguf_adapter.py), which
llama.cpp applies on top of a quantised base at load time (``llama-server --lora``, Ollama's
``ADAPTER``, and the embedded backend). The GGUF file also records which base it was trained
on, under ``BASE_KEY``: a bundled model's short name (``qwen2.5-coder-1.5b``) or a GGUF path.
So ``--model RUN`` (a training output folder) or ``--model ADAPTER.gguf`` is enough for the
embedded backend to load the base and apply the adapter; no second option is needed.

Reading the header needs the ``gguf`` package (pure Python), which every extra that brings
llama.cpp installs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.train_output import ADAPTER_DIR

ADAPTER_FILE = "adapter_model.gguf"  # beside PEFT's adapter_model.safetensors
# Our own metadata key (llama.cpp ignores keys it does not know).
BASE_KEY = "matrix_align.base_model"


@dataclass(frozen=True)
class GgufAdapter:
    """A GGUF LoRA adapter and the base model it was trained on."""

    path: Path
    base: str  # a bundled model's short name or a GGUF path
    run: Path | None  # the training output folder it sits in, if any

    @property
    def name(self) -> str:
        """A short label: the training run's folder name, else the file's stem."""
        return self.run.name if self.run is not None else self.path.stem


def find_adapter(spec: str) -> GgufAdapter | None:
    """The adapter ``spec`` names, or None when it names no adapter (a base model).

    ``spec`` may be a training output folder (``RUN/adapter/adapter_model.gguf``), its
    ``adapter/`` folder, or an adapter ``.gguf`` file. A training folder whose adapter was
    never converted is an error that says how to get one.
    """
    path = Path(spec).expanduser()
    run: Path | None = None
    if path.is_dir():
        if (path / ADAPTER_DIR).is_dir():
            run, path = path, path / ADAPTER_DIR / ADAPTER_FILE
        elif (path / "adapter_config.json").exists():
            run, path = path.parent, path / ADAPTER_FILE
        else:
            return None
        if not path.exists():
            raise MatrixAlignError(
                f"{run} holds a PEFT adapter but no {ADAPTER_FILE} for llama.cpp.",
                hint="train it again with --overwrite (train now writes the GGUF adapter), "
                "or convert it in Python with matrix_align.train.gguf_adapter.convert_adapter",
            )
    elif not (path.is_file() and path.suffix.lower() == ".gguf"):
        return None
    fields = _header(path, required=run is not None)
    if fields.get("general.type") != "adapter":
        return None
    base = fields.get(BASE_KEY)
    if not base:
        raise MatrixAlignError(
            f"{path} is a LoRA adapter that does not say which base model it belongs to.",
            hint="load it with llama.cpp's own --lora beside its base model, or convert the "
            "PEFT adapter again with matrix_align.train.gguf_adapter.convert_adapter",
        )
    return GgufAdapter(path=path.resolve(), base=str(base), run=run.resolve() if run else None)


def _header(path: Path, *, required: bool) -> dict[str, object]:
    """The string and number fields of a GGUF file's header. A file that cannot be read
    is an error where it must be an adapter (``required``), else no fields: a model file
    that is truncated or not GGUF is reported when the engine loads it."""
    try:
        from gguf import GGUFReader
    except ImportError as error:
        raise MatrixAlignError(
            "Reading a GGUF adapter needs the gguf package.", hint="pip install gguf"
        ) from error
    try:
        reader = GGUFReader(path)
    except Exception as error:  # the reader raises many kinds on a truncated or foreign file
        if not required:
            return {}
        raise MatrixAlignError(f"{path} is not a readable GGUF file: {error}") from error
    fields: dict[str, object] = {}
    for name, field in reader.fields.items():
        try:
            fields[name] = field.contents()
        except (ValueError, IndexError, TypeError):
            continue
    return fields
