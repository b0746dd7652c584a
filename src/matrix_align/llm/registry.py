"""Backend names -> model objects, from one table (``_BUILDERS``: a name and the function that
builds its model). Providers are imported inside those functions, so a missing optional
dependency (xllamacpp for ``embedded``) only matters when that backend is chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import ChatModel

if TYPE_CHECKING:
    from matrix_align.llm.rate_limit import RateLimits

# Requests in flight per backend by default. The embedded model's slots share 2-16 CPU
# cores, where more slots only split the same compute. A served model is usually a GPU
# engine (vLLM, SGLang, llama.cpp server) that batches whatever is in flight: with 4 in
# flight, generate on a batching server ran 3.4x faster than one scene at a time; with 16
# per server (and 2 x 16 scenes) it ran 14.9x faster (docs/generate.md).
DEFAULT_PARALLEL = {"embedded": 4, "openai": 16}


def default_parallel(backend: str) -> int:
    return DEFAULT_PARALLEL.get(backend, 4)


def default_scenes_in_flight(parallel: int, servers: int = 1) -> int:
    """``generate``'s default concurrency: twice the requests the servers take at once, so
    each server slot has a scene's next call waiting while another scene's call runs."""
    return max(4, 2 * parallel * servers)


def make_model(
    backend: str = "embedded",
    *,
    model: str | None = None,
    base_url: str | list[str] | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    parallel: int | None = None,
    retries: int = 3,
    timeout_s: float = 300.0,
    script: Any | None = None,
    limits: RateLimits | None = None,
    threads: int | None = None,
) -> ChatModel:
    """Build a backend wrapped with retries and accounting (and pacing, given ``limits``).

    ``parallel`` is the number of requests the backend serves at once: llama.cpp slots for
    ``embedded``, the in-flight limit per endpoint for ``openai`` (default:
    ``default_parallel(backend)``). ``threads`` is the embedded model's CPU threads. For
    ``embedded``, ``model`` is a bundled model's short name (``qwen2.5-coder-0.5b``,
    ``qwen2.5-coder-1.5b``), a GGUF path, or None for the default bundled model.
    ``limits`` is the per-minute budget of requests and tokens, one object shared by every
    model of the process; it sits inside the retries, since each retry is a request too.
    """
    from matrix_align.llm.wrappers import AccountingModel, RateLimitedModel, RetryingModel

    parallel = parallel or default_parallel(backend)
    build = _BUILDERS.get(backend)
    if build is None:
        raise MatrixAlignError(
            f"Unknown backend {backend!r}.", hint=f"choose one of: {', '.join(BACKENDS)}"
        )
    base = build(
        _Request(
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            parallel=parallel,
            timeout_s=timeout_s,
            script=script,
            threads=threads,
        )
    )
    if limits is not None:
        base = RateLimitedModel(base, limits)
    return AccountingModel(RetryingModel(base, max_retries=retries))


async def preflight(model: ChatModel) -> None:
    """Fail fast, before any work, when a backend cannot serve (unreachable URL, bad file).

    Wrappers forward ``check`` to the model they wrap; a backend that does not override it
    (``ChatModel``'s default) is always ready.
    """
    await model.check()


async def close_models(*models: ChatModel | None) -> None:
    """Close each model (``aclose``), best effort: a command calls this when its results are
    already on disk, so a failure to close is not worth an error."""
    for model in models:
        if model is not None:
            with contextlib.suppress(Exception):
                await model.aclose()


# --- the backends -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """What ``make_model`` was asked for, handed to the backend's builder."""

    model: str | None
    base_url: str | list[str] | None
    api_key_env: str
    parallel: int
    timeout_s: float
    script: Any | None
    threads: int | None


def _embedded(request: _Request) -> ChatModel:
    from matrix_align.llm.embedded import EmbeddedModel

    return EmbeddedModel(
        model_path=request.model, n_parallel=request.parallel, threads=request.threads
    )


def _openai(request: _Request) -> ChatModel:
    from matrix_align.llm.openai_compat import OpenAICompatModel

    if not request.base_url:
        raise MatrixAlignError(
            "The openai backend needs --base-url.",
            hint="e.g. --base-url http://localhost:8000/v1 for vLLM, "
            "http://localhost:11434/v1 for Ollama",
        )
    if not request.model:
        raise MatrixAlignError(
            "The openai backend needs --model (the model name the server serves)."
        )
    return OpenAICompatModel(
        base_url=request.base_url,
        model=request.model,
        api_key_env=request.api_key_env,
        max_in_flight=request.parallel,
        timeout_s=request.timeout_s,
    )


def _transformers(request: _Request) -> ChatModel:
    # A model folder, a `train` output (merged model or base + adapter), a hub id, a GGUF
    # file, "embedded" or a bundled short name (qwen2.5-coder-1.5b); no constrained
    # decoding (replies are parsed and validated).
    from matrix_align.extras import TRAIN_HINT, TRAIN_MODULES, require_modules
    from matrix_align.llm.transformers_backend import TransformersModel

    require_modules(TRAIN_MODULES[:2], "The transformers backend", TRAIN_HINT)
    return TransformersModel(request.model or "embedded")


def _scripted(request: _Request) -> ChatModel:
    from matrix_align.llm.scripted import ScriptedModel

    return request.script if request.script is not None else ScriptedModel.demo()


# Backend name -> the function that builds its model; the command-line help lists BACKENDS.
_BUILDERS: dict[str, Callable[[_Request], ChatModel]] = {
    "embedded": _embedded,
    "openai": _openai,
    "transformers": _transformers,
    "scripted": _scripted,
}
BACKENDS = tuple(_BUILDERS)
