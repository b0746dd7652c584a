"""The model card names the base model by its Hub id, never by a local path (which
`train --push-to-hub` would publish)."""

from __future__ import annotations

import json
from pathlib import Path

from matrix_align.llm.hf_models import ModelSource
from matrix_align.train.card import base_model_id


def test_a_hub_model_is_named_by_its_id() -> None:
    assert base_model_id(ModelSource("Qwen/Qwen2.5-0.5B-Instruct", "hub", "/cache/x")) == (
        "Qwen/Qwen2.5-0.5B-Instruct"
    )


def test_a_bundled_model_is_named_by_the_model_its_gguf_quantises() -> None:
    source = ModelSource("embedded", "gguf", "/home/me/.cache/matrix-align/models", "m.gguf")
    assert base_model_id(source) == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    source = ModelSource("qwen2.5-coder-0.5b", "gguf", "/cache", "m.gguf")
    assert base_model_id(source) == "Qwen/Qwen2.5-Coder-0.5B-Instruct"


def test_a_local_folder_is_named_only_by_the_hub_id_its_config_records(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_name_or_path": str(folder)}))
    assert base_model_id(ModelSource(str(folder), "folder", str(folder))) is None
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "org/base-7b"}))
    assert base_model_id(ModelSource(str(folder), "folder", str(folder))) == "org/base-7b"
    (folder / "config.json").write_text("{}")
    assert base_model_id(ModelSource(str(folder), "folder", str(folder))) is None
