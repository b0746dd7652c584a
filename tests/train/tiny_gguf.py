"""A tiny random Qwen2 model as both a transformers folder and a float32 GGUF file that
llama.cpp loads, so the GGUF adapter can be checked against PEFT on exactly the same weights.

The tokenizer fields (vocabulary, merges, special tokens, chat template) are copied from the
small bundled model's GGUF; the weights are the random model's, named through gguf's tensor
map. Test code only: the project converts adapters, never base models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HPARAMS = {
    "context_length": "max_position_embeddings",
    "embedding_length": "hidden_size",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
}


def tokenizer_fields(source: Path) -> list[tuple[str, Any, Any, Any]]:
    """(key, value, type, array item type) of every ``tokenizer.*`` field of ``source``."""
    import gguf

    reader = gguf.GGUFReader(source)
    fields = []
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        kind = field.types[0]
        sub = field.types[1] if kind == gguf.GGUFValueType.ARRAY else None
        fields.append((name, field.contents(), kind, sub))
    return fields


def token_count(source: Path) -> int:
    import gguf

    return len(gguf.GGUFReader(source).fields["tokenizer.ggml.tokens"].data)


def write_base_gguf(model_dir: Path, source: Path, out: Path) -> Path:
    """The transformers model in ``model_dir`` as a float32 GGUF with ``source``'s tokenizer."""
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    writer = gguf.GGUFWriter(out, "qwen2")
    writer.add_type(gguf.GGUFType.MODEL)
    for key, attr in _HPARAMS.items():
        writer.add_uint32(f"qwen2.{key}", int(getattr(config, attr)))
    writer.add_float32("qwen2.rope.freq_base", float(config.rope_parameters["rope_theta"]))
    writer.add_float32("qwen2.attention.layer_norm_rms_epsilon", float(config.rms_norm_eps))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key, value, kind, sub in tokenizer_fields(source):
        writer.add_key_value(key, value, kind, sub_type=sub)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert target is not None, name
        writer.add_tensor(target, tensor.detach().numpy().astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
