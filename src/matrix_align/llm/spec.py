"""A backend as a value, and its lifecycle: ``async with spec.open() as model``.

``BackendSpec`` is the one list of a backend's settings: which backend to build and how it is
called (model, servers, requests in flight, threads, timeout, retries, the per-minute budget),
each field with its default, bounds and help. The command line's backend options are derived
from these fields (``cli.option_groups.group``), so a new backend setting is one field here.

``open()`` builds the model, checks that it can serve (``preflight``: a reachable server, a
sound model file) and closes it (``aclose``) when the block ends, whichever way it ends: a
result, an error, Ctrl-C or a cancelled task. Commands, benches and the server open their
models this way, so no caller closes a model itself. ``open_all`` opens several (the model
under test's judges).

The model is built and used in one event loop (clients hold connections that belong to the
loop they were made in); its construction runs on a thread, so that slow imports (a provider's
SDK, llama.cpp) do not stall the loop. Construction holds nothing to release: connections
and model files are opened by ``check`` or the first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matrix_align.flags import NOT_A_FLAG, Flag
from matrix_align.llm.base import DEFAULT_PARALLEL, ChatModel
from matrix_align.llm.model_files import short_names_text
from matrix_align.llm.rate_limit import RateLimits
from matrix_align.llm.registry import (
    BACKENDS,
    close_models,
    default_parallel,
    make_model,
    preflight,
)

# The variables the openai client reads when it is given no URL or key; read the same way
# here, so a shell set up for the openai client needs no flags.
BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"


class BackendSpec(BaseModel):
    """Which backend to build and how it is called; ``open()`` gives it ready and closes it
    afterwards. ``BackendSpec("openai", model=..., base_url=...)``: the backend may be given
    by position."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    backend: Annotated[str, Flag("--backend", "-b")] = Field(
        "embedded", description=f"Model backend: {', '.join(BACKENDS)}."
    )
    model: Annotated[str | None, Flag("--model", "-m")] = Field(
        None,
        description="Model name the server serves (openai). For embedded: a bundled model's "
        f"short name, {short_names_text()}, the path of a GGUF file (docs/models.md), or a "
        "`train` output folder: its base with its LoRA adapter (docs/train.md).",
    )
    base_url: tuple[str, ...] = Field(
        (),
        description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:11434/v1 (Ollama). Repeat to spread requests over several servers. "
        f"Default for the openai backend: ${BASE_URL_ENV}, as the openai client reads it.",
    )
    api_key_env: str = Field(
        API_KEY_ENV,
        description="Environment variable holding the API key (never stored), by default "
        "the one the openai client reads.",
    )
    parallel: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Requests served at once: llama.cpp slots (embedded; default "
        f"{DEFAULT_PARALLEL['embedded']}) or in flight per server (openai; default "
        f"{DEFAULT_PARALLEL['openai']}, so a batching engine such as vLLM has work to batch).",
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=512,
        description="CPU threads of the embedded model (default: the physical cores this "
        "process may use). Lower it when other jobs share the machine: llama.cpp's threads "
        "wait for each other, so one slowed thread slows them all.",
    )
    timeout_s: Annotated[float, Flag("--request-timeout")] = Field(
        300.0,
        ge=1,
        description="Seconds one model request may take in all, sending to last byte "
        "(openai), before it counts as timed out and is retried.",
    )
    rpm: int | None = Field(
        None,
        ge=1,
        description="Requests per minute at most, over all calls of this process (a hosted "
        "API's limit; retries count). Default: no limit.",
    )
    tpm: int | None = Field(
        None,
        ge=1,
        description="Tokens (prompt + completion) per minute at most, over all calls of this "
        "process; a call reserves its prompt estimate plus --max-tokens until the server "
        "reports its usage. Default: no limit.",
    )
    # The commands that retry declare --retries with their run options (its help differs).
    retries: Annotated[int, NOT_A_FLAG] = Field(
        3, ge=0, description="Retries of a failed request (timeouts, 429, 5xx)."
    )
    limits: Annotated[RateLimits | None, NOT_A_FLAG] = Field(
        None,
        repr=False,
        description="The per-minute budget, made from rpm/tpm when not given. One object, "
        "which the copies of a spec (``replace``) and the judges of a model under test share, "
        "so the process keeps one limit.",
    )
    script: Annotated[Any | None, NOT_A_FLAG] = Field(
        None, repr=False, description="The scripted backend's model (None: the demo)."
    )

    def __init__(self, backend: str | None = None, /, **fields: Any) -> None:
        if backend is not None:
            fields["backend"] = backend
        super().__init__(**fields)

    @field_validator("base_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        """One URL or several; None is none."""
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """The openai backend's URL, when none is given, from $OPENAI_BASE_URL (read when the
        spec is made, as the openai client reads it when it is made)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("backend") == "openai" and not data.get("base_url"):
            data["base_url"] = os.environ.get(BASE_URL_ENV) or ()
        return data

    @model_validator(mode="after")
    def _budget(self) -> BackendSpec:
        """The per-minute budget, when none is given, from rpm/tpm once they are checked
        (they may arrive as text: ``--judge openai:m,rpm=60``)."""
        if self.limits is None:
            # The spec is frozen; the budget is set once, here, as the spec is made.
            object.__setattr__(self, "limits", RateLimits.per_minute(self.rpm, self.tpm))
        return self

    def replace(self, **changes: Any) -> BackendSpec:
        """A copy with ``changes``, validated as a new spec is (``model_copy`` is not), that
        keeps the budget object: ``spec.replace(retries=5)``."""
        return type(self)(**{**dict(self), **changes})

    @property
    def slots(self) -> int:
        """Requests served at once: ``parallel``, else the backend's default."""
        return self.parallel or default_parallel(self.backend)

    def build(self) -> ChatModel:
        """The wrapped model, constructed and not yet checked: the caller owns it (prefer
        ``open``, which checks and closes it)."""
        return make_model(self)

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[ChatModel]:
        """The model, built and checked, closed when the block ends (also when the check
        fails, or the block raises or is cancelled)."""
        model = await asyncio.to_thread(self.build)
        try:
            await preflight(model)
            yield model
        finally:
            await _close(model)


async def _close(model: ChatModel) -> None:
    """``close_models``, finished even when the task is cancelled meanwhile (a Ctrl-C that
    arrives as the block ends, as ``serve``'s does), then the cancellation passed on."""
    closing = asyncio.ensure_future(close_models(model))
    try:
        await asyncio.shield(closing)
    except asyncio.CancelledError:
        await closing
        raise


@contextlib.asynccontextmanager
async def open_all(specs: Iterable[BackendSpec]) -> AsyncIterator[list[ChatModel]]:
    """Several models, opened in order (each built and checked before the next is built),
    every one opened so far closed when the block ends or a later one fails its check."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(spec.open()) for spec in specs]
