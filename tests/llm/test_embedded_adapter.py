"""A tuned model on the embedded engine: ``--model RUN`` (a training output folder) or
``--model ADAPTER.gguf`` loads the base the adapter names and applies the adapter in
llama.cpp, on every command that takes a model (they all build it through the registry).

The adapter here is random, written with gguf for the small bundled model's shapes, so the
tests need no training; tests/train/test_gguf_adapter.py checks a converted PEFT adapter
against transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matrix_align.llm.lora import ADAPTER_FILE, BASE_KEY
from tests.conftest import TEST_MODEL

HIDDEN = 896  # Qwen2.5-0.5B's width; attn_q and attn_output are HIDDEN x HIDDEN
LAYERS = 24


def write_random_adapter(run: Path, base: str = TEST_MODEL, rank: int = 8) -> Path:
    """RUN/adapter/adapter_model.gguf: a random LoRA on every layer's attn_q and
    attn_output of the small model, large enough to change what it writes."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    folder = run / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16}))
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(folder / ADAPTER_FILE, "qwen2")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    writer.add_string(BASE_KEY, base)
    for layer in range(LAYERS):
        for name in ("attn_q", "attn_output"):
            a = rng.normal(0, 0.5, (rank, HIDDEN)).astype("float32")
            b = rng.normal(0, 0.5, (HIDDEN, rank)).astype("float32")
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_a", a)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return run


def test_a_run_folder_names_its_base_and_the_adapter(tmp_path: Path) -> None:
    from matrix_align.llm.embedded import EmbeddedModel
    from matrix_align.llm.model_files import bundled_model

    run = write_random_adapter(tmp_path / "my-run")
    for spec in (run, run / "adapter" / ADAPTER_FILE):
        model = EmbeddedModel(str(spec))
        assert model.bundled is bundled_model(TEST_MODEL)
        assert model.adapter is not None and model.adapter.path.name == ADAPTER_FILE
    assert EmbeddedModel(str(run)).name.endswith("+my-run")


def test_an_adapter_of_an_unknown_base_is_a_clear_error(tmp_path: Path) -> None:
    from matrix_align.errors import MatrixAlignError
    from matrix_align.llm.embedded import EmbeddedModel

    run = write_random_adapter(tmp_path / "r", base="no-such-model")
    with pytest.raises(MatrixAlignError, match="no-such-model"):
        EmbeddedModel(str(run))


@pytest.mark.e2e
async def test_the_adapter_changes_what_llama_cpp_writes(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from matrix_align.llm.registry import close_models
    from matrix_align.llm.spec import BackendSpec

    run = write_random_adapter(tmp_path / "run")
    messages = [{"role": "user", "content": "Name three colours."}]
    base, tuned = (BackendSpec("embedded", model=TEST_MODEL).build(),
                   BackendSpec("embedded", model=str(run)).build())  # fmt: skip
    try:
        plain = await base.complete(messages, max_tokens=12, temperature=0.0, seed=0)
        shifted = await tuned.complete(messages, max_tokens=12, temperature=0.0, seed=0)
    finally:
        await close_models(base, tuned)
    assert plain.text.strip() and shifted.text != plain.text


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["simulate", "generate", "evaluate"])
def test_every_command_takes_a_run_as_its_model(command: str, tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    from typer.testing import CliRunner

    from matrix_align.cli.app import app

    run = write_random_adapter(tmp_path / "run")
    scene = ["--roles", "1", "--steps", "1", "--max-tokens", "96", "--final-max-tokens", "24"]
    args = {
        "simulate": ["simulate", "Name three colours.", "--json", *scene],
        "generate": ["generate", "--source", "vicuna-bench:direct:1", "--hub", "never",
                     "--output", str(tmp_path / "g"), "-q", *scene],
        "evaluate": ["evaluate", "--systems", "vanilla", "--benchmarks", "vicuna-bench",
                     "--limit", "1", "--metrics", "refusal", "--hub", "never",
                     "--output", str(tmp_path / "e"), "--max-tokens", "24"],
    }[command]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--backend", "embedded", "--model", str(run)])
    assert result.exit_code == 0, result.output
    written = "\n".join(p.read_text("utf-8") for p in tmp_path.rglob("*.json*"))
    assert "+run" in (result.output + written)


@pytest.mark.e2e
def test_serve_answers_with_the_tuned_model(tmp_path: Path) -> None:
    pytest.importorskip("xllamacpp")
    pytest.importorskip("uvicorn")
    import openai

    from tests.serve.test_cli_server import ServeProcess

    run = write_random_adapter(tmp_path / "run")
    traces = tmp_path / "traces"
    server = ServeProcess(
        "--backend", "embedded", "--model", str(run), "--roles", "1", "--steps", "1",
        "--max-tokens", "96", "--final-max-tokens", "24", "--trace-dir", str(traces),
    )  # fmt: skip
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
        reply = client.chat.completions.create(
            model="matrix-align", messages=[{"role": "user", "content": "Name three colours."}]
        )
        assert reply.choices[0].message.content
    finally:
        output = server.stop()
    written = "\n".join(p.read_text("utf-8") for p in traces.rglob("*.json"))
    assert "+run" in written, output
