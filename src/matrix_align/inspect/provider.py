"""matrix-align's own backends as an inspect model provider, ``matrix_align``.

Why: inspect has providers for servers (``openai-api``, ``vllm``, ``ollama``...) but none for
a model that runs inside this process, and the project's default model is llama.cpp
in-process. With this provider the same evaluation runs on it with no server:

- ``--model matrix_align/embedded`` (the default bundled model) or
  ``matrix_align/embedded/qwen2.5-coder-0.5b`` (a bundled short name, or a GGUF path);
- ``matrix_align/transformers/DIR``: a Hugging Face folder or a ``train`` output;
- ``matrix_align/scripted``: the project's deterministic demo double (no model at all).

``-M parallel=N`` sets llama.cpp's slots (default 4, as ``--parallel``). A response
schema in the call's config is passed on as the JSON schema the backend constrains decoding
to, as ``simulate`` does.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel, Message

BACKENDS = ("embedded", "transformers", "scripted")
DEFAULT_MAX_TOKENS = 1024  # the project's per-call cap (SimulationConfig.max_tokens)
# inspect's stop reasons for the backends' OpenAI-style finish reasons.
_STOP = {"stop": "stop", "length": "max_tokens"}


def parse_model_name(model_name: str) -> tuple[str, str | None]:
    """``embedded/qwen2.5-coder-0.5b`` -> (``embedded``, ``qwen2.5-coder-0.5b``)."""
    backend, _, model = model_name.partition("/")
    if backend not in BACKENDS:
        raise MatrixAlignError(
            f"Unknown matrix_align model {model_name!r}.",
            hint="use matrix_align/embedded[/SHORT-NAME-OR-GGUF], "
            "matrix_align/transformers/DIR or matrix_align/scripted; for a server use inspect's "
            "own providers (openai-api, vllm, ollama...)",
        )
    return backend, model or None


def to_messages(input: list[ChatMessage]) -> list[Message]:
    """Text of each message; tool messages (which the backends cannot take) are refused."""
    out: list[Message] = []
    for message in input:
        if message.role not in ("system", "user", "assistant"):
            raise MatrixAlignError(
                f"The matrix_align provider cannot send a {message.role!r} message.",
                hint="it serves chat without tools; use a server provider for tool use",
            )
        out.append({"role": message.role, "content": message.text})
    return out


class MatrixAlignAPI(ModelAPI):
    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig | None = None,
        parallel: int | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config or GenerateConfig())
        if model_args:
            raise MatrixAlignError(
                f"Unknown matrix_align model argument(s): {', '.join(sorted(model_args))}.",
                hint="the one model argument is -M parallel=N (llama.cpp slots)",
            )
        from matrix_align.llm.spec import BackendSpec

        backend, model = parse_model_name(model_name)
        spec = BackendSpec(backend, model=model, parallel=parallel)
        self.parallel = spec.slots  # -M parallel=N, else the backend's default
        self.backend: ChatModel = spec.build()

    def max_tokens(self) -> int | None:
        return DEFAULT_MAX_TOKENS

    def max_connections(self) -> int:
        # More requests in flight than llama.cpp has slots only queue in its executor.
        return self.parallel

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        if tools:
            raise MatrixAlignError(
                "The matrix_align provider does not support tools.",
                hint="use a server provider (openai-api, vllm...) for tool use",
            )
        schema = (
            config.response_schema.json_schema.model_dump(exclude_none=True)
            if config.response_schema is not None
            else None
        )
        if schema is not None:
            # The title names the decision (the scripted double answers by it).
            schema["title"] = config.response_schema.name  # type: ignore[union-attr]
        completion = await self.backend.complete(
            to_messages(input),
            max_tokens=config.max_tokens or DEFAULT_MAX_TOKENS,
            temperature=config.temperature if config.temperature is not None else 0.2,
            seed=config.seed,
            schema=schema,
        )
        output = ModelOutput.from_content(
            model=self.model_name,
            content=completion.text,
            stop_reason=_STOP.get(completion.finish_reason, "unknown"),  # type: ignore[arg-type]
        )
        output.usage = ModelUsage(
            input_tokens=completion.prompt_tokens,
            output_tokens=completion.completion_tokens,
            total_tokens=completion.prompt_tokens + completion.completion_tokens,
            input_tokens_cache_read=completion.cached_tokens or None,
        )
        output.time = completion.latency_s
        return output


@modelapi(name="matrix_align")
def matrix_align_provider() -> type[ModelAPI]:
    return MatrixAlignAPI
