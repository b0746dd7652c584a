"""The server's settings, as the command line gives them (``cli/serve_options.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matrix_align.serve.conversation import Conversations, SystemMessages
from matrix_align.serve.gate import Gate, KeywordRule

DEFAULT_MODEL_NAME = "matrix-align"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ServeSettings:
    model_name: str = DEFAULT_MODEL_NAME  # the id clients send as `model` (GET /v1/models)
    gate: Gate = "always"
    keywords: KeywordRule | None = None  # the keyword gate's rule
    max_concurrency: int = 4  # scenes in flight
    max_queue: int = 32  # requests waiting for a scene slot before 503s
    response_timeout_s: float | None = 600.0  # per request, queue wait included
    api_key: str | None = field(default=None, repr=False)  # clients' Bearer key, if required
    max_traces: int = 1000  # records kept in memory for GET /v1/matrix/traces/{id}
    max_trace_bytes: int = 128 * 2**20  # ...and their JSON size at most (traces.py)
    trace_dir: Path | None = None  # where finished records are also written
    trace_dir_max_bytes: int = 2 * 2**30  # ...within this, the oldest deleted first
    # What one request's scene may use (budget.py): model calls, and characters of trace.
    max_scene_calls: int = 100
    max_scene_chars: int = 8 * 2**20
    conversations: Conversations = "render"  # conversation.py: what a dialogue becomes
    system_messages: SystemMessages = "context"
    # Host names a request may be addressed to; None accepts any. Bound to a loopback
    # address the server answers only its loopback names (see app.Guard).
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES
    keepalive_s: float = 15.0  # SSE comment interval while a streamed scene runs
    # A chat request is a few messages; a body near this is a mistake (or an attack), refused
    # before it is held in memory.
    max_body_bytes: int = 4 * 1024 * 1024
    # Reading a request (protocol.py): its headers within this of the connection opening
    # (or of the previous answer), its body within this of its headers; and the most
    # connections open at once (also kept under `ulimit -n`).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 256
