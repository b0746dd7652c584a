"""The transformers backend: the ChatModel protocol, JSON prompting without constrained
decoding, and resolution of a training output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel
from matrix_align.llm.train_output import record_merge
from matrix_align.llm.transformers_backend import TransformersModel, with_json_instruction

SCHEMA = {"title": "Verdict", "type": "object", "properties": {"ok": {"type": "boolean"}}}


def test_is_a_chat_model() -> None:
    assert isinstance(TransformersModel("embedded"), ChatModel)


def test_schema_is_asked_for_in_the_last_user_turn() -> None:
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "Is it ok?"}]
    chat = with_json_instruction(msgs, SCHEMA)  # type: ignore[arg-type]
    assert len(chat) == 2 and chat[-1]["content"].startswith("Is it ok?")
    assert '"ok":{"type":"boolean"}' in chat[-1]["content"]
    assert msgs[-1]["content"] == "Is it ok?"  # the caller's list is untouched
    after_assistant = with_json_instruction([{"role": "assistant", "content": "a"}], SCHEMA)  # type: ignore[list-item]
    assert after_assistant[-1]["role"] == "user"


def test_training_output_folders_resolve(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (out / "train_config.yaml").write_text("model: /models/base\n", encoding="utf-8")
    assert TransformersModel(str(out))._resolve() == ("/models/base", str(out / "adapter"))
    (out / "merged").mkdir()
    (out / "merged" / "config.json").write_text("{}", encoding="utf-8")
    record_merge(out / "merged", out / "adapter")
    assert TransformersModel(str(out))._resolve() == (str(out / "merged"), None)
    with pytest.raises(MatrixAlignError, match="adapter without its base"):
        TransformersModel(str(out / "adapter"))._resolve()


def test_a_merged_model_of_another_adapter_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"first")
    (out / "train_config.yaml").write_text("model: /models/base\n", encoding="utf-8")
    (out / "merged").mkdir()
    (out / "merged" / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="not made from the adapter") as unrecorded:
        TransformersModel(str(out))._resolve()  # a merge with no record (cut short, or old)
    assert "delete" in (unrecorded.value.hint or "")
    record_merge(out / "merged", out / "adapter")
    assert TransformersModel(str(out))._resolve()[0] == str(out / "merged")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"retrained")
    with pytest.raises(MatrixAlignError, match="not made from the adapter"):
        TransformersModel(str(out))._resolve()


async def test_schema_reply_is_parsed_or_none(tiny_model_dir: Path) -> None:
    model = TransformersModel(str(tiny_model_dir))
    await model.check()
    reply = await model.complete(
        [{"role": "user", "content": "Is it ok?"}], max_tokens=4, temperature=0.7, seed=3,
        schema=SCHEMA,
    )  # fmt: skip
    # A random model does not write JSON: parsed is None and the caller re-asks.
    assert reply.parsed is None and reply.completion_tokens > 0
    assert reply.finish_reason == "length" or reply.completion_tokens < 4
