"""The embedded llama.cpp backend.

Unit tests (no model) cover the error paths a user hits first: missing xllamacpp, a missing
or non-GGUF model file, and how llama.cpp's error bodies map onto retry classes. The e2e
tests run the small bundled model (TEST_MODEL, the 0.5B, not the default) with tiny
prompts; they share one server (two slots).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from matrix_align.errors import BackendUnavailable, PermanentBackendError, TransientBackendError
from matrix_align.llm.base import ChatModel
from matrix_align.llm.embedded import EmbeddedModel, _map_error
from matrix_align.llm.model_files import BUNDLED_MODELS, DEFAULT_MODEL, find_package_dir
from tests.conftest import TEST_MODEL

SMALL = BUNDLED_MODELS[TEST_MODEL]

# --- without a model ------------------------------------------------------------------


def test_implements_the_chat_model_protocol_and_names_itself(tmp_path: Path) -> None:
    assert isinstance(EmbeddedModel(), ChatModel)
    assert EmbeddedModel().name == f"embedded:{DEFAULT_MODEL.name}"
    assert EmbeddedModel().name == "embedded:qwen2.5-coder-1.5b-instruct"
    assert EmbeddedModel(model_path=TEST_MODEL).name == "embedded:qwen2.5-coder-0.5b-instruct"
    assert EmbeddedModel(model_path=str(tmp_path / "tiny-llama.Q4.gguf")).name == (
        "embedded:tiny-llama.Q4"
    )


async def test_missing_model_file_is_backend_unavailable(tmp_path: Path) -> None:
    model = EmbeddedModel(model_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(BackendUnavailable, match="does not exist"):
        await model.check()


async def test_non_gguf_file_is_backend_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(BackendUnavailable, match="not a GGUF file"):
        await EmbeddedModel(model_path=str(path)).check()


async def test_missing_xllamacpp_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    with pytest.raises(BackendUnavailable) as caught:
        await EmbeddedModel(model_path=str(path), n_parallel=1).check()
    assert "xllamacpp" in caught.value.message
    assert caught.value.hint == "pip install 'matrix-align[local]'"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"code": 400, "type": "exceed_context_size_error", "message": "too long"},
            PermanentBackendError,
        ),
        (
            {"code": 400, "type": "invalid_request_error", "message": "bad field"},
            PermanentBackendError,
        ),
        ({"code": 500, "type": "server_error", "message": "boom"}, TransientBackendError),
        ({"code": 503, "type": "unavailable_error", "message": "loading"}, TransientBackendError),
        ("weird", TransientBackendError),
    ],
)
def test_llama_error_bodies_map_to_retry_classes(body: Any, expected: type) -> None:
    assert type(_map_error("m", body)) is expected


# --- with the real model ----------------------------------------------------------------


def _real_model_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and all(
        find_package_dir(c.package) is not None for c in SMALL.chunks
    )


needs_model = pytest.mark.skipif(
    not _real_model_available(), reason="needs pip install 'matrix-align[local-0-5b]'"
)

PERSON = {
    "title": "Person",
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "mood": {"type": "string", "enum": ["calm", "angry"]},
    },
    "required": ["name", "mood"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def model() -> EmbeddedModel:
    # Small slots keep memory and the e2e run short; the server is shared across tests.
    return EmbeddedModel(model_path=TEST_MODEL, n_parallel=2, n_ctx_per_slot=1024)


@pytest.mark.e2e
@needs_model
async def test_schema_call_returns_parsed_json_matching_the_schema(model: EmbeddedModel) -> None:
    await model.check()
    result = await model.complete(
        [{"role": "user", "content": "Invent a calm person. Reply in JSON."}],
        max_tokens=40,
        temperature=0.2,
        seed=1,
        schema=PERSON,
    )
    assert isinstance(result.parsed, dict), result.text
    assert set(result.parsed) == {"name", "mood"}
    assert isinstance(result.parsed["name"], str) and len(result.parsed["name"]) <= 12
    assert result.parsed["mood"] in {"calm", "angry"}
    assert result.finish_reason == "stop"
    assert 0 < result.completion_tokens <= 40
    assert result.prompt_tokens > 0 and result.latency_s > 0
    assert result.model == f"embedded:{SMALL.name}"


@pytest.mark.e2e
@needs_model
async def test_concurrent_calls_both_complete(model: EmbeddedModel) -> None:
    prompts = ["Name a colour.", "Name a fruit."]
    results = await asyncio.gather(
        *(
            model.complete([{"role": "user", "content": p}], max_tokens=6, temperature=0.0)
            for p in prompts
        )
    )
    for result in results:
        assert result.text.strip()
        assert result.prompt_tokens > 0 and result.completion_tokens > 0


@pytest.mark.e2e
@needs_model
async def test_max_tokens_cuts_free_text_with_finish_reason_length(model: EmbeddedModel) -> None:
    result = await model.complete(
        [{"role": "user", "content": "Tell me a long story about a dragon."}],
        max_tokens=8,
        temperature=0.0,
    )
    assert result.finish_reason == "length"
    assert result.completion_tokens == 8
    assert result.parsed is None


@pytest.mark.e2e
@needs_model
async def test_repeated_prefix_is_served_from_the_cache(model: EmbeddedModel) -> None:
    messages = [
        {"role": "system", "content": "You are terse. " * 8},
        {"role": "user", "content": "Hi"},
    ]
    await model.complete(messages, max_tokens=1, temperature=0.0)
    again = await model.complete(messages, max_tokens=1, temperature=0.0)
    assert again.cached_tokens > 0


@pytest.mark.e2e
@needs_model
async def test_prompt_longer_than_a_slot_is_a_permanent_error(model: EmbeddedModel) -> None:
    with pytest.raises(PermanentBackendError, match="prompt tokens"):
        await model.complete(
            [{"role": "user", "content": "word " * 1200}], max_tokens=4, temperature=0.0
        )


@pytest.mark.e2e
@needs_model
async def test_truncated_gguf_is_backend_unavailable(tmp_path: Path) -> None:
    from matrix_align.llm.model_files import ensure_model

    path = tmp_path / "cut.gguf"
    with open(ensure_model(SMALL), "rb") as source:
        path.write_bytes(source.read(1_000_000))
    with pytest.raises(BackendUnavailable, match="could not load"):
        await EmbeddedModel(model_path=str(path), n_parallel=1, n_ctx_per_slot=512).check()


def test_nonsense_sizes_are_refused_up_front() -> None:
    from matrix_align.errors import MatrixAlignError

    with pytest.raises(MatrixAlignError, match="parallel"):
        EmbeddedModel(n_parallel=0)
    with pytest.raises(MatrixAlignError, match="context per slot"):
        EmbeddedModel(n_ctx_per_slot=16)
