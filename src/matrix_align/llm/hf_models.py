"""Where a model comes from, and loading it for training or generation.

``MODEL`` may be a local Hugging Face folder, a Hub id (``org/name``), a ``.gguf`` file (or a
folder holding one), ``embedded`` for the project's default GGUF model, or a bundled model's
short name (``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``; llm/model_files.py). GGUF files are
dequantised by transformers (slow on a CPU; docs/models.md has the times), so the result is
converted once into a plain Hugging Face folder in the user cache and reused from there. That
folder is also what an adapter trained on the embedded model names as its base, which is what
vLLM (`--enable-lora`) and PEFT need to load it again.

Training (train/run.py) and the transformers backend (llm/transformers_backend.py) both load
through these functions, so they agree on what a model name means. The cache is
``model_files.cache_root()``, shared with the bundled model files. torch and transformers are
imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from matrix_align.errors import MatrixAlignError
from matrix_align.llm import model_files

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_NAMES = ("embedded", "default")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: a folder, a Hub id, or a GGUF file inside a folder."""

    spec: str
    kind: Literal["folder", "hub", "gguf"]
    path: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path:
        assert self.gguf_file is not None
        return Path(self.path) / self.gguf_file


def resolve_model_source(spec: str) -> ModelSource:
    """Turn the user's MODEL into a ModelSource, or fail with what was wrong and the fix.

    Checked up front (no weights read), so a typo fails before the data is tokenised.
    """
    spec = spec.strip()
    if spec.lower() in EMBEDDED_NAMES or spec.lower() in _bundled_short_names():
        return _embedded_source(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise MatrixAlignError(
                f"Model path {path} is a file but not a .gguf model.",
                hint="pass a model folder (with config.json), a .gguf file or a Hub id",
            )
        return ModelSource(spec, "gguf", str(path.parent.resolve()), path.name)
    if path.is_dir():
        if (path / "config.json").exists():
            return ModelSource(spec, "folder", str(path.resolve()))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(spec, "gguf", str(path.resolve()), ggufs[0].name)
        if (path / "adapter_config.json").exists():
            raise MatrixAlignError(
                f"{path} is a LoRA adapter, not a base model.",
                hint="train from the base model it names in adapter_config.json",
            )
        raise MatrixAlignError(
            f"Model folder {path} has no config.json"
            + (f" and {len(ggufs)} .gguf files (pick one)" if ggufs else " and no .gguf file")
            + ".",
            hint="pass a Hugging Face model folder, a .gguf file, a Hub id, or 'embedded'",
        )
    looks_like_path = (
        spec.startswith(("/", ".", "~")) or spec.endswith(".gguf") or spec.count("/") > 1
    )
    if looks_like_path or not _HUB_ID.match(spec):
        shorts = _bundled_short_names()
        raise MatrixAlignError(
            f"Unknown model {spec!r}: no such file or folder, not a Hub id (org/name)"
            + (f", and not a bundled model ({', '.join(shorts)})" if shorts else "")
            + ".",
            hint="pass a local model folder, a .gguf file, a Hub id, 'embedded', or a bundled "
            "model's short name",
        )
    return ModelSource(spec, "hub", spec)


def _bundled_short_names() -> tuple[str, ...]:
    """Short names of the bundled GGUF models."""
    return tuple(model_files.BUNDLED_MODELS)


def _embedded_source(spec: str) -> ModelSource:
    """A bundled model ("embedded"/"default" = the default one), assembled and verified."""
    path = Path(model_files.ensure_bundled_model(spec))
    return ModelSource(spec, "gguf", str(path.parent), path.name)


def _gguf_key(src: ModelSource) -> str:
    """A cache key that changes when the GGUF file is replaced (name, size, mtime)."""
    stat = src.gguf_path.stat()
    return f"{Path(src.gguf_file or 'model').stem}-{stat.st_size}-{int(stat.st_mtime)}"


def load_tokenizer(src: ModelSource) -> PreTrainedTokenizerBase:
    """The model's own tokenizer and chat template; GGUF ones are extracted once and cached."""
    from transformers import AutoTokenizer

    try:
        if src.kind == "gguf":
            cached = model_files.cache_root() / "tokenizers" / _gguf_key(src)
            if (cached / "tokenizer_config.json").exists():
                return AutoTokenizer.from_pretrained(str(cached))
            tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
            tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
            tok.save_pretrained(str(tmp))
            _publish(tmp, cached)
            return tok
        return AutoTokenizer.from_pretrained(src.path)
    except (OSError, ValueError) as exc:
        raise _load_error(src, "tokenizer", exc) from None


def ensure_hf_folder(src: ModelSource, log: Any = None) -> ModelSource:
    """A GGUF source becomes a cached Hugging Face folder (converted once); others pass.

    Why: dequantising GGUF on every load costs minutes on a laptop, and PEFT/vLLM need a
    folder they can name as the adapter's base model.
    """
    if src.kind != "gguf":
        return src
    folder = model_files.cache_root() / "hf-models" / _gguf_key(src)
    if not (folder / "config.json").exists():
        # Minutes on a CPU (docs/models.md), so each step says so as it starts.
        say = log or (lambda _: None)
        started = time.monotonic()
        say(f"converting {src.gguf_path.name} to a transformers folder (once; minutes on a "
            f"CPU): {folder}")  # fmt: skip
        try:
            model = _dequantised_gguf_model(src, say)
        except (OSError, ValueError) as exc:
            raise _load_error(src, "model", exc) from None
        say("conversion: saving the fp32 weights (four times the GGUF's size)")
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        model.save_pretrained(str(tmp))
        load_tokenizer(src).save_pretrained(str(tmp))
        _publish(tmp, folder)
        say(f"conversion done in {time.monotonic() - started:.0f} s")
    return ModelSource(src.spec, "folder", str(folder))


def ensure_hf_folder_model(src: ModelSource, kwargs: dict[str, Any]) -> PreTrainedModel:
    """The model of a GGUF source, through the cached converted folder."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(ensure_hf_folder(src).path, **kwargs)


def _dequantised_gguf_model(src: ModelSource, say: Any = None) -> PreTrainedModel:
    """Load a GGUF file as a plain fp32 model that can be trained and saved.

    transformers attaches a GGUF "quantizer" to such a model even when it dequantised every
    weight (no GGUF kernels on CPU/CUDA), and that quantizer declares the model neither
    trainable nor serialisable. The weights themselves are ordinary tensors, so they are
    copied into a fresh model built from the same config, without the quantizer.
    """
    import torch
    from transformers import AutoModelForCausalLM

    say = say or (lambda _: None)
    say("conversion: reading and dequantising the GGUF weights")
    loaded = AutoModelForCausalLM.from_pretrained(
        src.path, gguf_file=src.gguf_file, dtype=torch.float32
    )
    quantizer = getattr(loaded, "hf_quantizer", None)
    if getattr(quantizer, "packed_modules", None):
        raise ValueError("weights stayed in packed GGUF blocks; they must be dequantised")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    say("conversion: copying the weights into a trainable model")
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = clean.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"GGUF weights do not fit the model: missing {missing}, extra {unexpected}"
        )
    clean.tie_weights()
    return clean


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished cache entry into place; a concurrent writer that won keeps its copy."""
    import shutil

    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def load_causal_lm(
    src: ModelSource,
    *,
    precision: str = "fp32",
    quantize_4bit: bool = False,
    device_map: Any = None,
) -> PreTrainedModel:
    """Load weights for training or generation; QLoRA loads the base in 4-bit NF4."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(precision)}
    if quantize_4bit:
        import torch
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if precision == "bf16" else torch.float16
        quant: dict[str, Any] = {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": compute,
        }
        if sharded_launch():
            # FSDP / ZeRO-3 shard the 4-bit weights: they must be stored in the compute dtype
            # and placed by the sharding engine, not by a device map.
            quant["bnb_4bit_quant_storage"] = compute
        elif device_map is None:
            # One full copy per process: under `accelerate launch` each rank owns one GPU.
            from accelerate import PartialState

            device_map = {"": PartialState().local_process_index}
        kwargs["quantization_config"] = BitsAndBytesConfig(**quant)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        if src.kind == "gguf":
            # Prefer ensure_hf_folder (converted once, cached); this path converts each time.
            return ensure_hf_folder_model(src, kwargs)
        return AutoModelForCausalLM.from_pretrained(src.path, **kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error(src, "model", exc) from None


def sharded_launch() -> bool:
    """True under `accelerate launch` with FSDP or DeepSpeed ZeRO-3 (parameters sharded)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        return True
    return (
        os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
        and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "") == "3"
    )


def _load_error(src: ModelSource, what: str, exc: Exception) -> MatrixAlignError:
    hint = (
        "is the Hub reachable? Offline, download the model once and pass its folder"
        if src.kind == "hub"
        else "check that the folder holds a complete Hugging Face model (config.json, weights)"
    )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MatrixAlignError(f"Could not load the {what} of {src.spec!r}: {first}", hint=hint)
