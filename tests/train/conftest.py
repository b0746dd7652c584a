"""Fixtures for the training tests: a real tokenizer, a tiny random Qwen2 model, tiny data.

No model hub is reachable, so the tokenizer (and its chat template) comes from the small
bundled model's GGUF file (TEST_MODEL, the 0.5B), extracted once and cached by
matrix_align.llm.hf_models; the model is a
2-layer Qwen2 with random weights built from a config, so the tests run the real TRL/PEFT code
on CPU in seconds. Tests that need torch/trl skip when the [train] extra is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.train.helpers import gguf_file, make_generate_dir


@pytest.fixture(scope="session", autouse=True)
def offline_hub() -> Iterator[None]:
    """Nothing here may reach (or wait for) the Hub."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("TOKENIZERS_PARALLELISM", "false")
        yield


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from matrix_align.llm.hf_models import ModelSource, load_tokenizer

    gguf = gguf_file()
    return load_tokenizer(ModelSource("test", "gguf", str(gguf.parent), gguf.name))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A 2-layer random Qwen2 saved as a normal model folder (config, weights, tokenizer)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AutoModelForCausalLM.from_config(config)
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def generate_dir(tmp_path: Path) -> Path:
    """A folder shaped like `matrix-align generate` output (samples.jsonl + exports/)."""
    return make_generate_dir(tmp_path / "demo")
