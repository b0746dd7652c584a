"""Where queries come from: built-in benchmarks by name, or the user's own file.

Built-in sources load the full public dataset from the Hugging Face hub through ``datasets``
when the hub is reachable, and otherwise a small sample shipped in ``data/samples/`` (see
its README for each file's origin and licence). The hub check is bounded to a few seconds
and honours ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``, so an offline machine falls back at
once instead of hanging. Every record keeps the source's metadata (XSTest's ``label``,
categories, HarmBench context, MT-Bench references...) because ``evaluate`` needs it, and a
``harmful`` flag saying whether the query should be refused.

User files (JSONL, JSON, CSV, Parquet) are validated completely before any model call: a
missing file, an empty one, a missing column (the error lists the columns found), a line
that is not JSON (the error names the line) or an empty prompt (the error names the row).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from matrix_align.data.hub_input import load_hub_dataset, parse_hub_spec
from matrix_align.errors import MatrixAlignError
from matrix_align.folders.records import ChatMessage, SourceRecord, render_conversation
from matrix_align.io import parse_jsonl
from matrix_align.reading import loads_json, open_text, read_text
from matrix_align.text import require_unicode

# About 25,000 tokens: beyond any benchmark prompt, and far beyond what a small model's
# context holds once the scene is added. A scene repeats the query in each of its calls.
MAX_PROMPT_CHARS = 100_000

HubPolicy = Literal["auto", "never", "always"]
HUB_POLICIES: tuple[str, ...] = ("auto", "never", "always")
HUB_PROBE_TIMEOUT_S = 3.0

Row = dict[str, Any]


@dataclass(frozen=True)
class HubRef:
    """A dataset on the Hugging Face hub, as ``datasets.load_dataset`` takes it."""

    path: str
    split: str
    configs: tuple[str | None, ...] = (None,)
    data_dir: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    name: str
    title: str
    license: str
    # The shipped sample; None when no verbatim copy could be had (the source then needs
    # the hub, and ``sample_note`` says why there is none).
    sample_file: str | None
    sample_note: str  # what the shipped sample holds
    sample_split: str  # the split the sample was taken from
    default_mode: str  # how the paper's recipe answers it: harmful -> matrix, helpful -> direct
    hub: HubRef | None
    parse: Callable[[int, Row], SourceRecord | None] = field(repr=False)
    notice: str | None = None  # printed whenever the source is used (non-commercial terms)


# --- row parsers: each accepts the shipped file's columns and the hub's spelling ----------


def _first(row: Row, *names: str) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _advbench(index: int, row: Row) -> SourceRecord | None:
    prompt = _text(_first(row, "goal", "prompt"))
    meta = {"target": row.get("target") or "", "harmful": True}
    return SourceRecord(id=f"advbench/{index}", source="advbench", prompt=prompt, metadata=meta)


def _harmfulqa(index: int, row: Row) -> SourceRecord | None:
    prompt = _text(_first(row, "question", "prompt"))
    key = row.get("id", index)
    meta = {"topic": row.get("topic") or "", "subtopic": row.get("subtopic") or "", "harmful": True}
    return SourceRecord(id=f"harmfulqa/{key}", source="harmfulqa", prompt=prompt, metadata=meta)


HH_ASSISTANT = "\n\nAssistant:"


def parse_hh_dialogue(text: str) -> list[ChatMessage]:
    """The conversation before the final assistant reply of an HH-RLHF string.

    HH-RLHF stores whole dialogues as ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``; the prompt
    is everything up to the last ``"\\n\\nAssistant:"``. The format is fixed by the dataset,
    so splitting on its two markers is exact.
    """
    cut = text.rfind(HH_ASSISTANT)
    prefix = text[:cut] if cut >= 0 else text
    messages: list[ChatMessage] = []
    for chunk in prefix.split("\n\nHuman:")[1:] if "\n\nHuman:" in prefix else []:
        parts = chunk.split(HH_ASSISTANT)
        messages.append(ChatMessage(role="user", content=parts[0].strip()))
        for reply in parts[1:]:
            messages.append(ChatMessage(role="assistant", content=reply.strip()))
    return [m for m in messages if m.content]


def _hh(name: str, harmful: bool) -> Callable[[int, Row], SourceRecord | None]:
    """HH-RLHF's subsets share one row format; only the label differs: harmless-base holds
    red-team dialogues (to be declined), helpful-base ordinary requests (to be answered)."""

    def parse(index: int, row: Row) -> SourceRecord | None:
        messages = parse_hh_dialogue(str(row.get("chosen") or ""))
        if not messages or messages[-1].role != "user":
            return None
        meta = {"turns": sum(1 for m in messages if m.role == "user"), "harmful": harmful}
        return SourceRecord(
            id=f"{name}/{index}",
            source=name,
            prompt=render_conversation(messages),
            messages=messages if len(messages) > 1 else None,
            metadata=meta,
        )

    return parse


def _pku(index: int, row: Row) -> SourceRecord | None:
    prompt = _text(row.get("prompt"))
    meta: dict[str, Any] = {"harmful": True}
    if row.get("category"):
        meta["category"] = row["category"]
    for key in ("is_response_0_safe", "is_response_1_safe", "safer_response_id"):
        if key in row:
            meta[key] = row[key]
    return SourceRecord(
        id=f"pku-saferlhf/{index}", source="pku-saferlhf", prompt=prompt, metadata=meta
    )


def _xstest(index: int, row: Row) -> SourceRecord | None:
    prompt = _text(row.get("prompt"))
    kind = str(row.get("type") or "")
    label = str(row.get("label") or ("unsafe" if kind.startswith("contrast_") else "safe"))
    meta = {
        "label": label,
        "type": kind,
        "focus": row.get("focus") or "",
        "note": row.get("note") or "",
        "harmful": label == "unsafe",
    }
    key = row.get("id", index)
    return SourceRecord(id=f"xstest/{key}", source="xstest", prompt=prompt, metadata=meta)


def _strongreject(index: int, row: Row) -> SourceRecord | None:
    prompt = _text(_first(row, "forbidden_prompt", "prompt"))
    meta = {
        "category": row.get("category") or "",
        "origin": row.get("source") or "",
        "harmful": True,
    }
    return SourceRecord(
        id=f"strongreject/{index}", source="strongreject", prompt=prompt, metadata=meta
    )


def harmbench_prompt(behavior: str, context: str) -> str:
    """HarmBench's own layout for contextual behaviours: the context first, then the ask."""
    return f"{context.strip()}\n\n---\n\n{behavior.strip()}" if context.strip() else behavior


def _harmbench(index: int, row: Row) -> SourceRecord | None:
    behavior = _text(_first(row, "Behavior", "prompt", "behavior"))
    context = _text(_first(row, "ContextString", "context"))
    functional = str(_first(row, "FunctionalCategory", "_config") or "")
    key = row.get("BehaviorID") or index
    meta = {
        "behavior": behavior,
        "behavior_id": row.get("BehaviorID") or "",
        "functional_category": functional,
        "semantic_category": _first(row, "SemanticCategory", "category") or "",
        "tags": row.get("Tags") or "",
        "context": context,
        "harmful": True,
    }
    return SourceRecord(
        id=f"harmbench/{key}",
        source="harmbench",
        prompt=harmbench_prompt(behavior, context),
        metadata=meta,
    )


def _fastchat_bench(name: str) -> Callable[[int, Row], SourceRecord | None]:
    def parse(index: int, row: Row) -> SourceRecord | None:
        turns = row.get("turns") or []
        if not turns:
            return None
        meta: dict[str, Any] = {
            "question_id": row.get("question_id", index),
            "category": row.get("category") or "",
            "turns": list(turns),  # MT-Bench's second turn is sent as a follow-up by evaluate
            "harmful": False,
        }
        if row.get("reference"):
            meta["reference"] = list(row["reference"])
        key = row.get("question_id", index)
        return SourceRecord(id=f"{name}/{key}", source=name, prompt=_text(turns[0]), metadata=meta)

    return parse


# Why hh-helpful ships no sample: the public repository keeps helpful-base in Git LFS, and no
# verbatim copy of its rows could be had to select from (samples/README.md). No rows are
# made up in their place, so the source needs the hub.
HH_HELPFUL_NO_SAMPLE = "none shipped (the public files are Git LFS objects): hub only"

PKU_NOTICE = (
    "PKU-SafeRLHF is licensed CC BY-NC 4.0 (non-commercial use only); data generated from it "
    "inherits that restriction."
)

SOURCES: dict[str, SourceInfo] = {
    info.name: info
    for info in (
        SourceInfo(
            "advbench", "AdvBench harmful behaviors", "MIT",
            "advbench_harmful_behaviors.csv", "first 50 of 520 behaviors", "train", "matrix",
            HubRef("walledai/AdvBench", "train"), _advbench,
        ),
        SourceInfo(
            "harmfulqa", "HarmfulQA questions", "Apache-2.0",
            "harmfulqa_flat.jsonl", "first 5 questions of each of the 10 topics (50 of 1,960)",
            "train", "matrix", HubRef("declare-lab/HarmfulQA", "train"), _harmfulqa,
        ),
        SourceInfo(
            "hh-harmless", "Anthropic HH-RLHF harmless-base", "MIT",
            "hh_rlhf_harmless_base_test.jsonl", "first 50 of 2,312 test dialogues", "test",
            "matrix", HubRef("Anthropic/hh-rlhf", "test", data_dir="harmless-base"),
            _hh("hh-harmless", harmful=True),
        ),
        SourceInfo(
            "hh-helpful", "Anthropic HH-RLHF helpful-base", "MIT",
            None, HH_HELPFUL_NO_SAMPLE, "test", "direct",
            HubRef("Anthropic/hh-rlhf", "test", data_dir="helpful-base"),
            _hh("hh-helpful", harmful=False),
        ),
        SourceInfo(
            "pku-saferlhf", "PKU-SafeRLHF red-team prompts", "CC BY-NC 4.0",
            "pku_saferlhf_problem.json",
            "the 83 prompts of safe-rlhf's GPT-4 evaluation (hub: the test split's prompts)",
            "eval", "matrix", HubRef("PKU-Alignment/PKU-SafeRLHF", "test"), _pku,
            notice=PKU_NOTICE,
        ),
        SourceInfo(
            "xstest", "XSTest v2 (over-refusal)", "CC BY 4.0",
            "xstest_prompts.csv", "first 5 prompts of each of the 18 types (90 of 450)",
            "test", "direct", HubRef("walledai/XSTest", "test"), _xstest,
        ),
        SourceInfo(
            "strongreject", "StrongREJECT forbidden prompts", "MIT",
            "strongreject_small_dataset.csv", "the official 60-prompt small set (of 313)",
            "small", "matrix", HubRef("walledai/StrongREJECT", "train"), _strongreject,
        ),
        SourceInfo(
            "harmbench", "HarmBench text behaviors", "MIT",
            "harmbench_behaviors_text_val.csv", "the official val split (80 of 400)", "val",
            "matrix",
            HubRef("walledai/HarmBench", "train", configs=("standard", "contextual", "copyright")),
            _harmbench,
        ),
        SourceInfo(
            "vicuna-bench", "Vicuna-Bench (helpfulness)", "Apache-2.0",
            "vicuna_bench_question.jsonl", "all 80 questions", "test", "direct", None,
            _fastchat_bench("vicuna-bench"),
        ),
        SourceInfo(
            "mt-bench", "MT-Bench first turns (helpfulness)", "Apache-2.0",
            "mt_bench_question.jsonl", "all 80 questions", "test", "direct", None,
            _fastchat_bench("mt-bench"),
        ),
    )
}  # fmt: skip


def source_names() -> list[str]:
    return list(SOURCES)


def _name_key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


def source_name(name: str) -> str:
    """The built-in source ``name`` means, however it is spelt: the project's ``hh-harmless``,
    inspect's task name ``hh_harmless``, inspect_evals' ``strong_reject``, any case. Names
    differ only in dashes and underscores across those tools, so they are matched without
    them (no two sources differ only there). Another name is returned as it is, for the
    caller's own error listing the choices."""
    key = _name_key(name)
    return next((known for known in SOURCES if _name_key(known) == key), name)


def get_source(name: str) -> SourceInfo:
    try:
        return SOURCES[source_name(name)]
    except KeyError:
        raise MatrixAlignError(
            f"Unknown source {name!r}.",
            hint=f"built-in sources: {', '.join(SOURCES)}; or use --input FILE",
        ) from None


# --- the shipped samples ----------------------------------------------------------------


def _sample_path(filename: str) -> Path:
    return Path(str(resources.files("matrix_align.data") / "samples" / filename))


def _read_sample_rows(info: SourceInfo) -> list[Row]:
    assert info.sample_file is not None  # load_source checks it first
    path = _sample_path(info.sample_file)
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".json":
        return list(json.loads(path.read_text(encoding="utf-8")))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if info.name == "vicuna-bench":
        refs = {}
        for line in (
            _sample_path("vicuna_bench_reference_gpt-4.jsonl").read_text("utf-8").splitlines()
        ):
            ref = json.loads(line)
            refs[ref["question_id"]] = [t for c in ref["choices"][:1] for t in c["turns"]]
        for row in rows:
            if row["question_id"] in refs:
                row["reference"] = refs[row["question_id"]]
    return rows


# --- the hub ----------------------------------------------------------------------------

_probe_cache: dict[str, tuple[bool, str]] = {}


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_status(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, reason). Bounded: the probe runs in a daemon thread, because a DNS lookup
    can block far longer than any socket timeout and must never delay exit."""
    if _env_true("HF_HUB_OFFLINE") or _env_true("HF_DATASETS_OFFLINE"):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    if endpoint in _probe_cache:
        return _probe_cache[endpoint]
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            import httpx

            response = httpx.head(f"{endpoint}/api/datasets", timeout=timeout_s)
            result.append((response.status_code < 500, f"HTTP {response.status_code}"))
        except Exception as exc:  # any failure means "not reachable", with its reason
            result.append((False, f"{type(exc).__name__}: {exc}"[:200]))

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    status = result[0] if result else (False, f"no answer from {endpoint} in {timeout_s:.0f} s")
    _probe_cache[endpoint] = status
    return status


def _load_hub_rows(hub: HubRef, split: str) -> list[Row]:
    import datasets

    rows: list[Row] = []
    for config in hub.configs:
        kwargs: dict[str, Any] = {"split": split}
        if hub.data_dir:
            kwargs["data_dir"] = hub.data_dir
        loaded = datasets.load_dataset(hub.path, config, **kwargs)
        for row in loaded:
            row = dict(row)
            if config:
                row.setdefault("_config", config)
            rows.append(row)
    return rows


# --- loading ----------------------------------------------------------------------------


@dataclass
class LoadedSource:
    name: str
    records: list[SourceRecord]
    origin: str  # "hub:<path>@<split>", "sample:<file>" or "file:<path>"
    notes: list[str] = field(default_factory=list)  # things the user should be told
    available: int = 0  # rows before --limit
    # Which version of the data: a hub dataset's commit, else "sha256:<hex>" of the shipped
    # sample or the user's file; None when the hub did not say (provenance records it).
    revision: str | None = None


def _finish(
    name: str, rows: Iterable[Row], parse: Callable[[int, Row], SourceRecord | None]
) -> list[SourceRecord]:
    """Parse rows, dropping empty prompts and repeated ones (first occurrence wins): a
    repeated query would get the same sample id and be generated once anyway."""
    seen: set[str] = set()
    out: list[SourceRecord] = []
    for index, row in enumerate(rows):
        record = parse(index, row)
        if record is None or not record.prompt.strip() or record.prompt in seen:
            continue
        seen.add(record.prompt)
        out.append(record)
    return out


# --limit: a number of items, or a fraction (0 < f < 1) of those available.
Limit = int | float


def limit_count(limit: Limit | None, available: int) -> int:
    """How many of ``available`` items ``limit`` keeps: a count as it is, a fraction of them
    rounded, and at least one (a tenth of 4 items runs one, not none)."""
    if limit is None:
        return available
    if isinstance(limit, float):
        return max(1, round(limit * available))
    return limit


def select(
    records: list[SourceRecord], *, limit: Limit | None, shuffle: bool, seed: int
) -> list[SourceRecord]:
    """``--shuffle`` then ``--limit``: a seeded random subset, or the first N in file order."""
    chosen = list(records)
    if shuffle:
        random.Random(seed).shuffle(chosen)
    return chosen[: limit_count(limit, len(chosen))]


def load_source(
    name: str,
    *,
    split: str | None = None,
    hub: HubPolicy = "auto",
    limit: Limit | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> LoadedSource:
    """A built-in source's records: from the hub when reachable (``hub="auto"``), else the
    shipped sample. ``hub="always"`` makes an unreachable hub an error; ``"never"`` always
    uses the sample. A ``split`` other than the sample's needs the hub: silently falling back
    to test rows when training rows were asked for would contaminate an evaluation."""
    name = source_name(name)
    info = get_source(name)
    if hub not in HUB_POLICIES:
        raise MatrixAlignError(f"Unknown hub policy {hub!r}.", hint="auto, never or always")
    notes: list[str] = [info.notice] if info.notice else []
    wanted_split = split or (info.hub.split if info.hub else info.sample_split)
    records: list[SourceRecord] | None = None
    origin = ""
    revision: str | None = None
    if info.hub is not None and hub != "never":
        reachable, reason = hub_status()
        if reachable:
            try:
                rows = _load_hub_rows(info.hub, wanted_split)
                records = _finish(name, rows, info.parse)
                origin = f"hub:{info.hub.path}@{wanted_split}"
                revision = hub_revision(info.hub.path)
                if not records:
                    raise ValueError("no usable prompts in the hub rows")
            except Exception as exc:  # schema drift, auth, a dropped connection...
                records = None
                reason = f"loading {info.hub.path} failed ({type(exc).__name__}: {exc})"[:300]
        if records is None:
            if hub == "always" or info.sample_file is None:
                fallback = (
                    "or use --hub auto to fall back to the shipped sample"
                    if info.sample_file
                    else f"{name} ships no sample to fall back to ({info.sample_note})"
                )
                raise MatrixAlignError(
                    f"Source {name!r}: the Hugging Face hub is not usable ({reason}).",
                    hint=f"check the network or HF_ENDPOINT, {fallback}",
                )
            notes.append(
                f"{name}: hub not used ({reason}); using the shipped sample ({info.sample_note})."
            )
    if records is None:
        if info.sample_file is None:  # only reached with --hub never
            raise MatrixAlignError(
                f"Source {name!r} has no shipped sample ({info.sample_note}), so --hub never "
                "cannot load it.",
                hint="use --hub auto where the Hugging Face hub is reachable",
            )
        if split and split != info.sample_split:
            raise MatrixAlignError(
                f"Source {name!r}: split {split!r} needs the Hugging Face hub; the shipped "
                f"sample is from the {info.sample_split!r} split.",
                hint=f"drop '@{split}', or run where the hub is reachable",
            )
        records = _finish(name, _read_sample_rows(info), info.parse)
        origin = f"sample:{info.sample_file}"
        revision = file_revision(_sample_path(info.sample_file))
    available = len(records)
    return LoadedSource(
        name=name,
        records=select(records, limit=limit, shuffle=shuffle, seed=seed),
        origin=origin,
        notes=notes,
        available=available,
        revision=revision,
    )


def file_revision(path: Path) -> str:
    from matrix_align.llm.model_files import sha256_file

    return f"sha256:{sha256_file(path)}"


def hub_revision(path: str, timeout_s: float = 10.0) -> str | None:
    """The commit of a hub dataset (None when the hub does not say): the rows just loaded
    came from the cache or the hub at about this revision."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(path, timeout=timeout_s).sha
    except Exception:  # offline, private, an old client: provenance says "unknown"
        return None


# --- user files -------------------------------------------------------------------------

INPUT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")


def _read_jsonl_rows(path: Path) -> list[Row]:
    def bad(number: int, error: json.JSONDecodeError | None, value: Any) -> None:
        if error is not None:
            raise MatrixAlignError(
                f"{path}, line {number}: not valid JSON ({error.msg}, column {error.colno}).",
                hint="each line of a JSONL file must be one JSON object",
            ) from None
        raise MatrixAlignError(
            f"{path}, line {number}: expected a JSON object, found {type(value).__name__}.",
            hint='each line must look like {"prompt": "..."}',
        )

    with open_text(path, "Input file", encoding="utf-8-sig") as handle:
        return [row for _, row in parse_jsonl(handle, bad, name=str(path))]


def _read_rows(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl_rows(path)
        if suffix == ".json":
            text = read_text(path, "Input file", encoding="utf-8-sig")
            try:
                value = loads_json(text, f"Input file {path}") if text.strip() else []
            except json.JSONDecodeError as exc:
                raise MatrixAlignError(
                    f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}).",
                    hint="a .json input must hold a list of objects; use .jsonl for one per line",
                ) from None
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise MatrixAlignError(f"{path}: a .json input must hold a list of objects.")
            return value
        if suffix == ".csv":
            with open_text(path, "Input file", encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                try:
                    return [dict(row) for row in reader]
                except csv.Error as exc:
                    raise MatrixAlignError(
                        f"{path}, line {reader.line_num}: not valid CSV ({exc})."
                    ) from None
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                return pq.read_table(path).to_pylist()
            except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
                raise MatrixAlignError(f"{path}: not a readable Parquet file ({exc}).") from None
    except UnicodeDecodeError as exc:
        raise MatrixAlignError(f"{path}: not UTF-8 text ({exc.reason}).") from None
    raise MatrixAlignError(
        f"{path}: unsupported file type {suffix or '(none)'!r}.",
        hint=f"use one of: {', '.join(INPUT_SUFFIXES)}",
    )


def _columns_found(rows: list[Row]) -> list[str]:
    found: dict[str, None] = {}
    for row in rows[:1000]:
        found.update(dict.fromkeys(row))
    return list(found)


def _jsonable(value: Any) -> Any:
    """Metadata must survive JSON (samples.jsonl) exactly; odd types become strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _as_messages(value: Any) -> list[ChatMessage] | None:
    if not isinstance(value, list) or not value:
        return None
    try:
        messages = [ChatMessage(role=m["role"], content=m["content"]) for m in value]
    except (TypeError, KeyError, ValueError):
        return None
    return messages if messages[-1].role == "user" else None


def load_input_file(
    path: str | Path,
    *,
    prompt_field: str = "prompt",
    limit: Limit | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> LoadedSource:
    """Queries from the user's file, or from a Hub dataset (``hf://OWNER/NAME``, see
    data.hub_input). The prompt column holds text, or a chat message list ending with a
    user turn (TRL's conversational ``prompt``). Other columns become metadata; an ``id``
    column names the rows (else the row number)."""
    hub = parse_hub_spec(path)
    if hub is not None:
        rows = load_hub_dataset(hub).to_list()
        label, source, origin = str(hub), f"hub:{hub.repo}", f"hub:{hub}"
        line_word, revision = "row", hub_revision(hub.repo)
    else:
        path = Path(path)
        if not path.exists():
            raise MatrixAlignError(f"Input file not found: {path}")
        if not path.is_file():
            raise MatrixAlignError(f"Input path is not a file: {path}")
        rows = _read_rows(path)
        label, source, origin = str(path), f"file:{path.name}", f"file:{path}"
        line_word = "line" if path.suffix.lower() in (".jsonl", ".ndjson") else "row"
        revision = file_revision(path)
    if not rows:
        raise MatrixAlignError(f"Input file {label} has no rows.", hint="it is empty")
    if not any(prompt_field in row for row in rows):
        columns = _columns_found(rows)
        raise MatrixAlignError(
            f"Input file {label} has no column {prompt_field!r}; columns found: "
            f"{', '.join(columns) if columns else '(none)'}.",
            hint="name the prompt column with --prompt-field",
        )
    records: list[SourceRecord] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        value = row.get(prompt_field)
        messages = _as_messages(value)
        prompt = render_conversation(messages) if messages else value
        if not isinstance(prompt, str) or not prompt.strip():
            shown = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
            raise MatrixAlignError(
                f"Input file {label}, {line_word} {index + 1}: the {prompt_field!r} value is "
                f"not a non-empty prompt ({shown}).",
                hint="give every row a text prompt, or a list of chat messages ending with "
                "a user turn",
            )
        where = f"Input file {label}, {line_word} {index + 1}"
        require_unicode(prompt, where)
        if len(prompt) > MAX_PROMPT_CHARS:
            raise MatrixAlignError(
                f"{where}: the prompt has {len(prompt):,} characters, more than the "
                f"{MAX_PROMPT_CHARS:,} a query may have.",
                hint="shorten it or leave the row out (a scene repeats the query in every call "
                "and in its trace)",
            )
        require_unicode(json.dumps(row, ensure_ascii=False, default=str), where)
        if prompt in seen:
            continue
        seen.add(prompt)
        key = row.get("id")
        key = key if isinstance(key, str | int) and str(key) else index
        meta = {k: _jsonable(v) for k, v in row.items() if k not in (prompt_field, "id")}
        records.append(
            SourceRecord(
                id=f"{source}/{key}",
                source=source,
                prompt=prompt.strip(),
                messages=messages if messages and len(messages) > 1 else None,
                metadata=meta,
            )
        )
    return LoadedSource(
        name=source,
        records=select(records, limit=limit, shuffle=shuffle, seed=seed),
        origin=origin,
        available=len(records),
        revision=revision,
    )
