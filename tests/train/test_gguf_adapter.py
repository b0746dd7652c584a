"""The GGUF LoRA converter: on a tiny random Qwen2 (the same float32 weights on both sides),
llama.cpp with the converted adapter predicts what PEFT predicts, and the adapter moves the
predictions away from the base's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.lora import ADAPTER_FILE, find_adapter
from tests.train.helpers import gguf_file
from tests.train.tiny_gguf import token_count, write_base_gguf

SEQUENCES = [[9707, 11, 1879, 374, 264, 1273, 315, 279, 5476, 13, 576, 3974, 13876, 38835,
              34208, 916, 279, 15678, 5562, 13, 220, 16, 17, 18, 19, 20, 21, 22, 23]]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> dict[str, Path]:  # noqa: ANN001
    """A tiny random Qwen2 (vocabulary as large as the GGUF's, as llama.cpp requires), its
    float32 GGUF, and a random-initialised LoRA adapter on every linear layer."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("xllamacpp")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    source = gguf_file()
    folder = tmp_path_factory.mktemp("tiny-gguf")
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=token_count(source), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, tie_word_embeddings=True, initializer_range=0.2,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    base_gguf = write_base_gguf(folder / "hf", source, folder / "base-f32.gguf")
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    run = folder / "run"
    peft_model.save_pretrained(run / "adapter")
    return {"hf": folder / "hf", "gguf": base_gguf, "run": run, "adapter": run / "adapter"}


def test_converted_adapter_matches_peft_in_llama_cpp(tiny: dict[str, Path]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from matrix_align.research.adapter_agreement import (
        compare,
        llama_top_logprobs,
        transformers_logprobs,
    )
    from matrix_align.train.gguf_adapter import convert_adapter

    out = convert_adapter(tiny["adapter"], tiny["hf"] / "config.json", str(tiny["gguf"]))
    assert out == tiny["adapter"] / ADAPTER_FILE

    base = AutoModelForCausalLM.from_pretrained(tiny["hf"])
    base_ref = transformers_logprobs(base, SEQUENCES)
    tuned_ref = transformers_logprobs(PeftModel.from_pretrained(base, tiny["adapter"]), SEQUENCES)
    base_llama = llama_top_logprobs(tiny["gguf"], None, SEQUENCES)
    tuned_llama = llama_top_logprobs(tiny["gguf"], out, SEQUENCES)

    same_base = compare(base_ref, base_llama)
    same_tuned = compare(tuned_ref, tuned_llama)
    assert same_base.top1_agreement >= 0.95 and same_base.kl_mean < 0.01
    assert same_tuned.top1_agreement >= 0.95 and same_tuned.kl_mean < 0.01
    # The adapter changes predictions, and llama.cpp changes them the way PEFT does:
    # without the adapter, llama.cpp is far from the tuned PEFT model.
    untuned = compare(tuned_ref, base_llama)
    assert untuned.kl_mean > 20 * max(same_tuned.kl_mean, 1e-4)
    assert untuned.top1_agreement < same_tuned.top1_agreement


def test_find_adapter_reads_the_base_from_the_run(tiny: dict[str, Path]) -> None:
    from matrix_align.train.gguf_adapter import convert_adapter

    convert_adapter(tiny["adapter"], tiny["hf"] / "config.json", "qwen2.5-coder-0.5b")
    for spec in (tiny["run"], tiny["adapter"], tiny["adapter"] / ADAPTER_FILE):
        found = find_adapter(str(spec))
        assert found is not None and found.base == "qwen2.5-coder-0.5b"
        assert found.run == tiny["run"].resolve() or spec == tiny["adapter"] / ADAPTER_FILE
    assert find_adapter(str(tiny["gguf"])) is None  # a base model, not an adapter
    assert find_adapter(str(tiny["hf"])) is None


def test_a_run_without_a_gguf_adapter_says_how_to_convert(tmp_path: Path) -> None:
    (tmp_path / "run" / "adapter").mkdir(parents=True)
    (tmp_path / "run" / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 8}))
    with pytest.raises(MatrixAlignError, match="no adapter_model.gguf") as raised:
        find_adapter(str(tmp_path / "run"))
    assert "convert_adapter" in str(raised.value)  # the hint names a remedy that exists


def test_dora_is_refused(tmp_path: Path) -> None:
    from matrix_align.train.gguf_adapter import convert_adapter

    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "use_dora": True}))
    with pytest.raises(MatrixAlignError, match="only plain LoRA"):
        convert_adapter(tmp_path, tmp_path / "config.json", "x.gguf")
