"""A PEFT LoRA adapter -> a GGUF LoRA adapter that llama.cpp applies to a quantised base.

llama.cpp's own converter (``convert_lora_to_gguf.py``) is a script in its repository, not
on PyPI, so this is the project's own, written with the ``gguf`` package. The format is
llama.cpp's: ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``,
and for each adapted weight ``W`` of the base (named as in the base's GGUF, through gguf's
tensor-name map) two tensors ``W.lora_a`` and ``W.lora_b`` holding PEFT's ``lora_A``
(rank x in) and ``lora_B`` (out x rank) as they are. llama.cpp adds
``scale * B @ A`` with ``scale = alpha / rank``, PEFT's own scaling; rank-stabilised LoRA
(``alpha / sqrt(rank)``) is written as the alpha that gives the same scale.

Tensors are stored in float32: an adapter is small beside its base (docs/train.md), and
llama.cpp then adds exactly what PEFT adds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from matrix_align.errors import MatrixAlignError
from matrix_align.io import temp_beside
from matrix_align.llm.lora import ADAPTER_FILE, BASE_KEY

_PEFT_PREFIX = "base_model.model."


def convert_adapter(adapter_dir: Path, base_config: Path, base: str) -> Path:
    """Write ``adapter_dir/adapter_model.gguf`` from the PEFT adapter in ``adapter_dir``.

    ``base_config`` is the base model's ``config.json`` (its architecture and layer count
    name the tensors); ``base`` is what the embedded backend loads under the adapter (a
    bundled model's short name or a GGUF path), recorded in the file.
    """
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    settings = json.loads((adapter_dir / "adapter_config.json").read_text("utf-8"))
    unsupported = [k for k in ("use_dora", "modules_to_save") if settings.get(k)]
    if settings.get("peft_type", "LORA") != "LORA" or unsupported:
        raise MatrixAlignError(
            f"{adapter_dir}: only plain LoRA adapters convert to GGUF "
            f"({settings.get('peft_type')}{', ' + ', '.join(unsupported) if unsupported else ''}).",
            hint="train with --finetune lora or qlora and no modules_to_save",
        )
    config = json.loads(Path(base_config).read_text("utf-8"))
    arch = _arch(config.get("model_type", ""))
    names = gguf.get_tensor_name_map(arch, int(config["num_hidden_layers"]))
    rank, alpha = int(settings["r"]), float(settings["lora_alpha"])
    if settings.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # llama.cpp scales by alpha / rank
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in weights.items():
        module, part = _split(key)
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise MatrixAlignError(
                f"{adapter_dir}: no llama.cpp tensor for {module} ({arch}).",
                hint="adapt only the transformer's linear layers (the default targets)",
            )
        pairs.setdefault(target, {})[part] = tensor.astype(np.float32)

    out = adapter_dir / ADAPTER_FILE
    tmp = temp_beside(out)  # written whole, then renamed: never a half-written adapter
    try:
        writer = gguf.GGUFWriter(path=tmp, arch=gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(BASE_KEY, base)
        for target, pair in sorted(pairs.items()):
            if set(pair) != {"lora_a", "lora_b"}:
                raise MatrixAlignError(f"{adapter_dir}: {target} lacks lora_A or lora_B.")
            writer.add_tensor(f"{target}.lora_a", pair["lora_a"])
            writer.add_tensor(f"{target}.lora_b", pair["lora_b"])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _split(key: str) -> tuple[str, str]:
    """``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`` ->
    (``model.layers.0.self_attn.q_proj``, ``lora_a``)."""
    module = key.removeprefix(_PEFT_PREFIX)
    for part in ("lora_A", "lora_B"):
        marker = f".{part}."
        if marker in module:
            return module.split(marker)[0], part.lower()
    raise MatrixAlignError(f"Unexpected tensor {key} in the adapter (not lora_A or lora_B).")


def _arch(model_type: str) -> object:
    import gguf

    for arch, name in gguf.MODEL_ARCH_NAMES.items():
        if name == model_type:
            return arch
    raise MatrixAlignError(
        f"llama.cpp knows no architecture named {model_type!r}; the adapter stays PEFT-only."
    )
