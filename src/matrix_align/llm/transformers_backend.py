"""``transformers`` backend: a Hugging Face model (optionally with a LoRA adapter) in-process.

Its purpose is to use a model that ``matrix-align train`` produced, with no server: pass the
training output folder (``--model runs/demo-sft``) and the backend loads the merged model if
there is one, else the base model named in ``train_config.yaml`` plus ``adapter/``. Any other
model spec that training accepts works too (local folder, Hub id, .gguf, ``embedded`` or a
bundled model's short name such as ``qwen2.5-coder-1.5b``).

What it is not: fast. Calls are served one at a time (``generate`` on one model object is not
safe to run concurrently, and batching across scenes would need a scheduler); for datasets or
evaluations at scale, serve the model with vLLM and use the ``openai`` backend (docs/train.md).

Structured output: there is no constrained decoding here. When a schema is given, the prompt
asks for a JSON object matching it and the reply is parsed with ``parse_json``; ``parsed`` is
None when the model did not comply, and the caller's re-ask/fallback logic takes over, as for
any backend.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from matrix_align.errors import BackendUnavailable
from matrix_align.llm.base import ChatModel, Completion, Message, parse_json
from matrix_align.llm.train_output import training_output_weights

JSON_INSTRUCTION = (
    "Reply with only one JSON object, no prose and no code fence, that matches this JSON "
    "schema:\n{schema}"
)


class TransformersModel(ChatModel):
    """A causal LM served in this process through ``transformers.generate``."""

    def __init__(
        self,
        model: str = "embedded",
        *,
        adapter: str | None = None,
        device: str | None = None,
        precision: str = "auto",
        merge_adapter: bool = True,
        name: str | None = None,
    ) -> None:
        self.spec = model
        self.adapter = adapter
        self.device = device
        self.precision = precision
        self.merge_adapter = merge_adapter
        self.name = name or f"transformers:{model}" + (f"+{adapter}" if adapter else "")
        self._model: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    # ---- loading -----------------------------------------------------------------------

    def _resolve(self) -> tuple[str, str | None]:
        """(base model spec, adapter folder or None), reading a training output folder."""
        return training_output_weights(self.spec, self.adapter)

    def _load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            import torch

            from matrix_align.llm.hf_models import (
                ensure_hf_folder,
                load_causal_lm,
                load_tokenizer,
                resolve_model_source,
            )

            base_spec, adapter = self._resolve()
            source = ensure_hf_folder(resolve_model_source(base_spec))
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            precision = self.precision
            if precision == "auto":
                precision = "bf16" if device.startswith("cuda") else "fp32"
            model = load_causal_lm(source, precision=precision)
            if adapter:
                from peft import PeftModel

                try:
                    model = PeftModel.from_pretrained(model, adapter)
                except (OSError, ValueError) as exc:
                    raise BackendUnavailable(f"Could not load adapter {adapter}: {exc}") from None
                if self.merge_adapter:
                    # Merged weights generate as fast as the base model.
                    model = model.merge_and_unload()
            model.to(device)
            model.eval()
            # Training saves the tokenizer beside the adapter: prefer it (same chat template).
            if adapter and (Path(adapter) / "tokenizer_config.json").exists():
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(adapter)
            else:
                tokenizer = load_tokenizer(source)
            if not tokenizer.chat_template:
                raise BackendUnavailable(f"The tokenizer of {base_spec!r} has no chat template.")
            self._tokenizer, self._model = tokenizer, model

    async def check(self) -> None:
        """Preflight: load now, so a bad path fails before any scene starts."""
        await asyncio.to_thread(self._load)

    # ---- generation --------------------------------------------------------------------

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        return await asyncio.to_thread(
            self._complete_sync, messages, max_tokens, temperature, seed, schema
        )

    def _complete_sync(
        self,
        messages: list[Message],
        max_tokens: int,
        temperature: float,
        seed: int | None,
        schema: dict[str, Any] | None,
    ) -> Completion:
        import torch

        self._load()
        tokenizer, model = self._tokenizer, self._model
        chat = with_json_instruction(messages, schema) if schema else list(messages)
        started = time.perf_counter()
        input_ids = tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"].to(model.device)
        gen: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        }
        if temperature > 0:
            gen.update(do_sample=True, temperature=temperature, top_p=1.0)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self._generate_lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)  # global RNG: safe only because calls are serialised
            output = model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **gen
            )
        new_tokens = output[0, input_ids.shape[1] :]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        eos_ids = _eos_ids(model, tokenizer)
        stopped = len(new_tokens) > 0 and int(new_tokens[-1]) in eos_ids
        finish = "length" if len(new_tokens) >= max_tokens and not stopped else "stop"
        return Completion(
            text=text,
            parsed=parse_json(text) if schema else None,
            prompt_tokens=int(input_ids.shape[1]),
            completion_tokens=int(len(new_tokens)),
            latency_s=time.perf_counter() - started,
            finish_reason=finish,
            model=self.name,
        )


def with_json_instruction(messages: list[Message], schema: dict[str, Any]) -> list[Message]:
    """Ask for JSON in the last user turn (a second user turn would break some templates)."""
    instruction = JSON_INSTRUCTION.format(schema=json.dumps(schema, separators=(",", ":")))
    chat = [dict(m) for m in messages]
    if chat and chat[-1]["role"] == "user":
        chat[-1]["content"] = f"{chat[-1]['content']}\n\n{instruction}"
    else:
        chat.append({"role": "user", "content": instruction})
    return chat  # type: ignore[return-value]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return {i for i in ids if i is not None}
