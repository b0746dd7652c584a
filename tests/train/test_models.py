"""Model resolution: what MODEL means, and a clear error for an unknown one (no weights read)."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.hf_models import resolve_model_source
from tests.conftest import TEST_MODEL


def test_folders_files_and_hub_ids(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_model_source(str(tmp_path / "hf")).kind == "folder"
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "m.gguf").write_bytes(b"GGUF")
    src = resolve_model_source(str(tmp_path / "g"))
    assert (src.kind, src.gguf_file) == ("gguf", "m.gguf")
    assert resolve_model_source(str(tmp_path / "g" / "m.gguf")).kind == "gguf"
    assert resolve_model_source("Qwen/Qwen2.5-0.5B-Instruct").kind == "hub"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("./no/such/model", "Unknown model"),
        ("/no/such/model.gguf", "Unknown model"),
        ("qwen-0.5b", "Unknown model"),
        ("a/b/c", "Unknown model"),
    ],
)
def test_unknown_models_are_refused(spec: str, needle: str) -> None:
    with pytest.raises(MatrixAlignError, match=needle):
        resolve_model_source(spec)


def test_folders_that_are_not_models(tmp_path: Path) -> None:
    with pytest.raises(MatrixAlignError, match="no config.json"):
        resolve_model_source(str(tmp_path))
    (tmp_path / "adapter_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="LoRA adapter"):
        resolve_model_source(str(tmp_path))
    text = tmp_path / "weights.bin"
    text.write_bytes(b"x")
    with pytest.raises(MatrixAlignError, match="not a .gguf"):
        resolve_model_source(str(text))


def test_a_bundled_short_name_resolves_to_its_gguf(tokenizer: object) -> None:
    # The tokenizer fixture has assembled (or skipped for lack of) the small bundled model.
    src = resolve_model_source(TEST_MODEL)
    assert src.kind == "gguf" and src.gguf_path.exists()
    assert src.gguf_file == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def test_embedded_resolves_to_the_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """'embedded' names the default bundled model; checked without assembling its 1.1 GB."""
    from matrix_align.llm import model_files

    asked: list[str] = []

    def fake_ensure(name: str) -> Path:
        asked.append(name)
        model = model_files.bundled_model(name)
        assert model is not None
        return Path("/cache/models") / model.filename

    monkeypatch.setattr(model_files, "ensure_bundled_model", fake_ensure)
    src = resolve_model_source("embedded")
    assert asked == ["embedded"]
    assert (src.kind, src.gguf_file) == ("gguf", model_files.DEFAULT_MODEL.filename)
    assert (
        model_files.bundled_model("embedded")
        is model_files.BUNDLED_MODELS[model_files.DEFAULT_SHORT_NAME]
    )


def test_the_one_time_conversion_says_each_step(monkeypatch, tmp_path: Path) -> None:
    # A GGUF's conversion into a trainable folder takes minutes on a CPU (127 s for the
    # 1.5B): it says what it is doing as it goes, then how long it took, never silent.
    from matrix_align.llm import hf_models
    from matrix_align.llm.hf_models import ModelSource, ensure_hf_folder

    class Saved:
        def save_pretrained(self, folder: str) -> None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "config.json").write_text("{}")

    def dequantise(src: ModelSource, say) -> Saved:
        say("conversion: reading and dequantising the GGUF weights")
        return Saved()

    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hf_models, "_dequantised_gguf_model", dequantise)
    monkeypatch.setattr(hf_models, "load_tokenizer", lambda src: Saved())
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    lines: list[str] = []
    folder = ensure_hf_folder(ModelSource("m", "gguf", str(tmp_path), "m.gguf"), log=lines.append)
    assert (Path(folder.path) / "config.json").exists()
    assert lines[0].startswith("converting m.gguf to a transformers folder (once")
    assert any("dequantising" in line for line in lines) and any("saving" in line for line in lines)
    assert lines[-1].startswith("conversion done in ")
    lines.clear()
    ensure_hf_folder(ModelSource("m", "gguf", str(tmp_path), "m.gguf"), log=lines.append)
    assert lines == []  # converted once: later runs load the folder
