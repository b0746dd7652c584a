"""The options of ``matrix-align serve``: where the server listens and how it answers
(``ServerOptions``), each checked and turned into the library's ``ServeSettings`` before the
model loads; the client key is read from the environment, never from the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, get_args

import typer

from matrix_align.cli import options as o
from matrix_align.cli.evaluate_options import Retries
from matrix_align.cli.option_groups import OptionGroup

SERVER = "Server"


@dataclass(kw_only=True)
class ServerOptions(OptionGroup):
    """Where the server listens and how it answers."""

    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. The default answers only this machine; another "
            "address exposes every scene to the network: set --auth-key-env then.",
            rich_help_panel=SERVER,
        ),
    ] = "127.0.0.1"
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help="Port (0: any free port, printed).",
            rich_help_panel=SERVER,
        ),
    ] = 8100
    served_model_name: Annotated[
        str,
        typer.Option(
            "--served-model-name",
            help="The model id clients send (and GET /v1/models lists).",
            rich_help_panel=SERVER,
        ),
    ] = "matrix-align"
    gate: Annotated[
        str,
        typer.Option(
            "--gate",
            help="Which requests run a scene: always (every one); first-answer (the model "
            "answers first, and the scene runs unless that answer declines, which the final "
            "step would keep anyway); keyword (only messages containing a listed word; the "
            "rest are answered directly, one call). See docs/serve.md.",
            rich_help_panel=SERVER,
        ),
    ] = "always"
    keywords: Annotated[
        Path | None,
        typer.Option(
            "--keywords",
            parser=o.path_value,
            help="With --gate keyword: a file of keywords, one a line (a trailing * matches "
            "any ending), instead of the built-in list.",
            rich_help_panel=SERVER,
        ),
    ] = None
    max_concurrency: Annotated[
        int,
        typer.Option(
            "--max-concurrency",
            min=1,
            max=1024,
            help="Requests answered at once (scenes in flight); their model calls share "
            "--parallel.",
            rich_help_panel=SERVER,
        ),
    ] = 4
    max_queue: Annotated[
        int,
        typer.Option(
            "--max-queue",
            min=0,
            help="Requests that may wait for a free slot; beyond that a request gets 503 "
            "(queue_full) with Retry-After at once.",
            rich_help_panel=SERVER,
        ),
    ] = 32
    response_timeout: Annotated[
        float,
        typer.Option(
            "--response-timeout",
            min=1,
            help="Seconds a chat request may take in all, queue wait included, before it "
            "is answered 504 and its scene cancelled. (--request-timeout is per model call.)",
            rich_help_panel=SERVER,
        ),
    ] = 600.0
    auth_key_env: Annotated[
        str | None,
        typer.Option(
            "--auth-key-env",
            help="Environment variable holding the key clients must send (Authorization: "
            "Bearer KEY, the openai client's api_key). Default: no key needed. "
            "(--api-key-env is the upstream server's key.)",
            rich_help_panel=SERVER,
        ),
    ] = None
    max_traces: Annotated[
        int,
        typer.Option(
            "--max-traces",
            min=1,
            help="Recent requests whose trace GET /v1/matrix/traces/ID serves from memory.",
            rich_help_panel=SERVER,
        ),
    ] = 1000
    max_trace_mb: Annotated[
        int,
        typer.Option(
            "--max-trace-mb",
            min=1,
            help="...and at most this many MB of them (their JSON size), oldest dropped first.",
            rich_help_panel=SERVER,
        ),
    ] = 128
    trace_dir: Annotated[
        Path | None,
        typer.Option(
            "--trace-dir",
            parser=o.path_value,
            help="Also write each finished request's trace to DIR/ID.json (kept, and served, "
            "after it leaves memory).",
            rich_help_panel=SERVER,
        ),
    ] = None
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=1,
            help="Connections open at once (kept under the open-file limit, ulimit -n). "
            "Beyond it a new one closes the oldest still waiting for its request; a "
            "request's headers must arrive within 10 s, its body within 60 s.",
            rich_help_panel=SERVER,
        ),
    ] = 256
    trace_dir_max_mb: Annotated[
        int,
        typer.Option(
            "--trace-dir-max-mb",
            min=1,
            help="Keep --trace-dir within this many MB, deleting the oldest traces first.",
            rich_help_panel=SERVER,
        ),
    ] = 2048
    max_scene_calls: Annotated[
        int,
        typer.Option(
            "--max-scene-calls",
            min=1,
            help="Model calls one request may make; a scene that needs more is stopped and "
            "answered 400 scene_too_large (a request chooses its scene's size).",
            rich_help_panel=SERVER,
        ),
    ] = 100
    max_scene_mb: Annotated[
        int,
        typer.Option(
            "--max-scene-mb",
            min=1,
            help="MB of prompts and replies (the trace) one request may make, likewise.",
            rich_help_panel=SERVER,
        ),
    ] = 8
    conversations: Annotated[
        str,
        typer.Option(
            "--conversations",
            help="A request with earlier turns: render (the default: the turns become one "
            "query, as generate and the inspect solver render a conversation; what "
            "evaluation harnesses need) or reject (400 multi_turn_unsupported).",
            rich_help_panel=SERVER,
        ),
    ] = "render"
    system_messages: Annotated[
        str,
        typer.Option(
            "--system-messages",
            help="A system message in a request: context (the default: kept in the query as "
            "context, as generate keeps one), ignore (dropped) or reject (400).",
            rich_help_panel=SERVER,
        ),
    ] = "context"
    retries: Retries = 3

    def settings(self):  # noqa: ANN201
        """The server's settings, every option checked (before the model loads)."""
        from matrix_align.serve.conversation import Conversations, SystemMessages
        from matrix_align.serve.gate import Gate
        from matrix_align.serve.settings import ServeSettings

        # The choices are the settings' own types (serve/gate.py, serve/conversation.py).
        _choice(self.gate, get_args(Gate), "--gate")
        _choice(self.conversations, get_args(Conversations), "--conversations")
        _choice(self.system_messages, get_args(SystemMessages), "--system-messages")
        return ServeSettings(
            model_name=_model_name(self.served_model_name),
            gate=self.gate,  # type: ignore[arg-type]
            keywords=_keyword_rule(self.gate, self.keywords),
            max_concurrency=self.max_concurrency,
            max_queue=self.max_queue,
            response_timeout_s=self.response_timeout,
            api_key=_client_key(self.auth_key_env),
            max_traces=self.max_traces,
            max_trace_bytes=self.max_trace_mb * 2**20,
            trace_dir=_trace_dir(self.trace_dir),
            trace_dir_max_bytes=self.trace_dir_max_mb * 2**20,
            max_scene_calls=self.max_scene_calls,
            max_scene_chars=self.max_scene_mb * 2**20,
            conversations=self.conversations,  # type: ignore[arg-type]
            system_messages=self.system_messages,  # type: ignore[arg-type]
            allowed_hosts=_allowed_hosts(self.host),
            max_connections=self.max_connections,
        )


def _choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}", param_hint=option)


def _model_name(name: str) -> str:
    if not name.strip():
        raise typer.BadParameter("is empty; give the model id clients send",
                                 param_hint="--served-model-name")  # fmt: skip
    return name


def _keyword_rule(gate: str, path: Path | None):  # noqa: ANN202
    from matrix_align.errors import MatrixAlignError
    from matrix_align.serve.gate import KeywordRule, default_keywords

    if gate != "keyword":
        if path is not None:
            raise MatrixAlignError(
                "--keywords is used only by --gate keyword.", hint="add --gate keyword"
            )
        return None
    return default_keywords() if path is None else KeywordRule.from_file(path)


def _client_key(env_name: str | None) -> str | None:
    """The key clients must send, read from the environment (never from the command line,
    where other users of the machine could read it in the process list)."""
    if env_name is None:
        return None
    from matrix_align.errors import MatrixAlignError
    from matrix_align.redact import register_secret

    key = os.environ.get(env_name, "").strip()
    if not key:
        raise MatrixAlignError(
            f"--auth-key-env {env_name}: that environment variable is not set or empty.",
            hint=f"export {env_name}=<a long random string>; clients send it as their API key",
        )
    register_secret(key)
    return key


def _trace_dir(path: Path | None) -> Path | None:
    from matrix_align.io import writable_folder

    return None if path is None else writable_folder(path, "--trace-dir")


def _allowed_hosts(host: str) -> frozenset[str] | None:
    from matrix_align.serve.server import is_loopback
    from matrix_align.serve.settings import LOOPBACK_NAMES

    return LOOPBACK_NAMES | {host.lower()} if is_loopback(host) else None
