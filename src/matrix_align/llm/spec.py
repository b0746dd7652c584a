"""A backend as a value, and its lifecycle: ``async with spec.open() as model``.

``BackendSpec`` says which backend to build and how it is called (model, servers, requests
in flight, threads, timeout, retries, the per-minute budget). ``open()`` builds the model,
checks that it can serve (``preflight``: a reachable server, a sound model file) and closes
it (``aclose``) when the block ends, whichever way it ends: a result, an error, Ctrl-C or a
cancelled task. Commands, benches and the server open their models this way, so no caller
closes a model itself. ``open_all`` opens several (the model under test's judges).

The model is built and used in one event loop (clients hold connections that belong to the
loop they were made in); its construction runs on a thread, so that slow imports (a provider's
SDK, llama.cpp) do not stall the loop. Construction holds nothing to release: connections
and model files are opened by ``check`` or the first call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matrix_align.llm.base import ChatModel
from matrix_align.llm.registry import close_models, make_model, preflight

if TYPE_CHECKING:
    from matrix_align.llm.rate_limit import RateLimits


@dataclass(frozen=True)
class BackendSpec:
    """What ``make_model`` builds (see its docstring for each field); ``open()`` gives it
    ready and closes it afterwards."""

    backend: str = "embedded"
    model: str | None = None
    base_url: str | tuple[str, ...] | None = None  # several: requests spread over them
    api_key_env: str = "OPENAI_API_KEY"
    parallel: int | None = None  # None: the backend's default (DEFAULT_PARALLEL)
    threads: int | None = None
    timeout_s: float = 300.0
    retries: int = 3
    limits: RateLimits | None = None  # one budget shared by every model of the process
    script: Any | None = None  # the scripted backend's model (None: the demo)

    def build(self) -> ChatModel:
        """The wrapped model, constructed and not yet checked: the caller owns it (prefer
        ``open``, which checks and closes it)."""
        urls = list(self.base_url) if isinstance(self.base_url, tuple) else self.base_url
        return make_model(
            self.backend, model=self.model, base_url=urls, api_key_env=self.api_key_env,
            parallel=self.parallel, retries=self.retries, timeout_s=self.timeout_s,
            script=self.script, limits=self.limits, threads=self.threads,
        )  # fmt: skip

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
