"""The SFT loss covers exactly the assistant answer, as the model's real chat template renders
it: every system/user/template token is masked (-100), every token of the answer and the
template's end-of-turn after it is trained, and no token is added to the vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from matrix_align.train.config import Environment, TrainConfig
from matrix_align.train.data import load_train_data
from tests.train.helpers import write_jsonl

CPU = Environment(cuda=False, bf16=False, bitsandbytes=False)


def _expected_mask(tokenizer: Any, prompt: list, answer: str) -> tuple[list[int], list[bool]]:
    """Independent of TRL: render the whole chat with the template, find where the answer's
    text starts, and mark every token at or after it (answer + end-of-turn markup)."""
    text = tokenizer.apply_chat_template(
        prompt + [{"role": "assistant", "content": answer}], tokenize=False
    )
    start = text.rindex(answer)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], [s >= start for s, _ in enc["offset_mapping"]]


def test_completion_mask_is_exactly_the_assistant_tokens(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from matrix_align.train.trainer import build_trainer

    def record(prompt: list[tuple[str, str]], answer: str) -> dict[str, Any]:
        return {
            "prompt": [{"role": role, "content": text} for role, text in prompt],
            "completion": [{"role": "assistant", "content": answer}],
        }

    records = [
        record([("user", "Can I borrow your ladder?")], "Yes, of course. Bring it back Friday."),
        record(
            [("system", "Be brief."), ("user", "Tell me how to pick a lock.")],
            "Only on a lock you own: a locksmith can help.",
        ),
    ]
    data = load_train_data(write_jsonl(tmp_path / "sft.jsonl", records), "sft")
    cfg = TrainConfig(max_length=512, gradient_checkpointing=False, save_strategy="no")
    vocab_before = len(tokenizer)
    trainer = build_trainer(
        cfg,
        CPU,
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        tokenizer=tokenizer,
        dataset=data.dataset,
        output_dir=tmp_path / "ckpt",
    )
    assert len(tokenizer) == vocab_before
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, record in zip(trainer.train_dataset, records, strict=True):
        answer = record["completion"][0]["content"]
        ids, expected = _expected_mask(tokenizer, record["prompt"], answer)
        assert row["input_ids"] == ids  # TRL rendered the same template
        trained = [label != -100 for label in row["labels"]]
        assert trained == expected
        kept = [t for t, on in zip(row["input_ids"], trained, strict=True) if on]
        assert tokenizer.decode(kept) == answer + "<|im_end|>\n"
        assert end_of_turn in kept  # the model learns to stop
        # Nothing of the prompt leaks into the loss: the user text is fully masked.
        masked_text = tokenizer.decode([t for t, on in zip(ids, trained, strict=True) if not on])
        assert record["prompt"][-1]["content"] in masked_text


def test_gguf_tokenizer_has_the_chat_template(tokenizer: Any) -> None:
    pytest.importorskip("transformers")
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>"


def test_bundled_vicuna_template_masks_only_the_answer(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    """For base models without a template (the paper's Wizard-Vicuna): the bundled Vicuna
    format renders, and the loss still covers exactly the answer and the eos after it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from matrix_align.train.models import read_chat_template
    from matrix_align.train.trainer import build_trainer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = read_chat_template("vicuna")
    chat = [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
    text = tok.apply_chat_template(chat, tokenize=False)
    assert text.endswith(" USER: Hi? ASSISTANT: Hello." + tok.eos_token)
    assert tok.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True).endswith(
        " ASSISTANT:"
    )
    record = {"prompt": chat[:1], "completion": chat[1:]}
    data = load_train_data(write_jsonl(tmp_path / "v.jsonl", [record]), "sft")
    trainer = build_trainer(
        TrainConfig(max_length=128, gradient_checkpointing=False, save_strategy="no"),
        CPU,
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        tokenizer=tok,
        dataset=data.dataset,
        output_dir=tmp_path / "ckpt",
    )
    row = trainer.train_dataset[0]
    kept = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert tok.decode(kept).strip() == "Hello." + tok.eos_token
