"""Backend specs -> model objects, from one table (``_BUILDERS``: a backend's name and the
function that builds its model from a ``BackendSpec``). Providers are imported inside those
functions, so a missing optional dependency (xllamacpp for ``embedded``) only matters when
that backend is chosen."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.base import DEFAULT_PARALLEL, ChatModel

if TYPE_CHECKING:
    from matrix_align.llm.spec import BackendSpec  # which imports this module


def default_parallel(backend: str) -> int:
    """The backend's default requests at once; a backend without its own has the embedded
    model's (the transformers model runs in-process too)."""
    return DEFAULT_PARALLEL.get(backend, DEFAULT_PARALLEL["embedded"])


def default_scenes_in_flight(parallel: int, servers: int = 1) -> int:
    """``generate``'s default concurrency: twice the requests the servers take at once, so
    each server slot has a scene's next call waiting while another scene's call runs."""
    return max(4, 2 * parallel * servers)


def make_model(spec: BackendSpec) -> ChatModel:
    """The backend ``spec`` names, wrapped with retries and accounting (and pacing, given
    ``spec.limits``: the budget sits inside the retries, since each retry is a request too).
    See ``BackendSpec``'s fields for what each setting means."""
    from matrix_align.llm.wrappers import AccountingModel, RateLimitedModel, RetryingModel

    build = _BUILDERS.get(spec.backend)
    if build is None:
        raise MatrixAlignError(
            f"Unknown backend {spec.backend!r}.", hint=f"choose one of: {', '.join(BACKENDS)}"
        )
    base = build(spec)
    if spec.limits is not None:
        base = RateLimitedModel(base, spec.limits)
    return AccountingModel(RetryingModel(base, max_retries=spec.retries))


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


def _embedded(spec: BackendSpec) -> ChatModel:
    from matrix_align.llm.embedded import EmbeddedModel

    return EmbeddedModel(model_path=spec.model, n_parallel=spec.slots, threads=spec.threads)


def _openai(spec: BackendSpec) -> ChatModel:
    from matrix_align.llm.openai_compat import OpenAICompatModel

    if not spec.base_url:
        raise MatrixAlignError(
            "The openai backend needs --base-url (or the environment variable "
            "OPENAI_BASE_URL, as the openai client reads it).",
            hint="e.g. --base-url http://localhost:8000/v1 for vLLM, "
            "http://localhost:11434/v1 for Ollama",
        )
    if not spec.model:
        raise MatrixAlignError(
            "The openai backend needs --model (the model name the server serves)."
        )
    return OpenAICompatModel(
        base_url=spec.base_url,
        model=spec.model,
        api_key_env=spec.api_key_env,
        max_in_flight=spec.slots,
        timeout_s=spec.timeout_s,
    )


def _transformers(spec: BackendSpec) -> ChatModel:
    # A model folder, a `train` output (merged model or base + adapter), a hub id, a GGUF
    # file, "embedded" or a bundled short name (qwen2.5-coder-1.5b); no constrained
    # decoding (replies are parsed and validated).
    from matrix_align.extras import TRAIN_HINT, TRAIN_MODULES, require_modules
    from matrix_align.llm.transformers_backend import TransformersModel

    require_modules(TRAIN_MODULES[:2], "The transformers backend", TRAIN_HINT)
    return TransformersModel(spec.model or "embedded")


def _scripted(spec: BackendSpec) -> ChatModel:
    from matrix_align.llm.scripted import ScriptedModel

    return spec.script if spec.script is not None else ScriptedModel.demo()


# Backend name -> the function that builds its model; the command-line help lists BACKENDS.
_BUILDERS: dict[str, Callable[[BackendSpec], ChatModel]] = {
    "embedded": _embedded,
    "openai": _openai,
    "transformers": _transformers,
    "scripted": _scripted,
}
BACKENDS = tuple(_BUILDERS)
