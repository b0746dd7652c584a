"""Training data: find it, check it, and hand TRL exactly the columns it needs.

``--data`` may be a ``generate`` output folder (samples.jsonl beside exports in TRL's
formats), one JSONL or Parquet file, a Hugging Face ``save_to_disk`` folder, or a dataset on
the Hub (``OWNER/NAME`` or ``hf://OWNER/NAME[:CONFIG][@SPLIT]``, data.hub_input). In a folder
the file is chosen by content, not by name: the first file whose columns fit the method wins
(names that hint at the method are tried first), so a change of export file names in
``generate`` does not break training; on the Hub, the config likewise.

Every record leaves here in TRL's *conversational* form, so the model's own chat template
always renders it (a plain-string prompt would otherwise be fed to the model raw):
- SFT: ``prompt`` (messages) and ``completion`` (one assistant message). A ``messages``
  record becomes prompt = all but the last message, completion = the last (assistant) one.
- DPO: ``prompt``, ``chosen``, ``rejected``.
Columns such as id/source/mode/trace/meta are never read into the training set: they are
large (traces) and trainers would trip over them. Only ``source`` is counted for the card.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from matrix_align.data.export import FILE_TYPES, TEST_DIR
from matrix_align.data.hub_input import HubDataset, config_names, load_hub_dataset, parse_hub_spec
from matrix_align.errors import MatrixAlignError
from matrix_align.io import parse_jsonl

Method = Literal["sft", "dpo"]

# Column sets that satisfy each method, in order of preference.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "sft": [("prompt", "completion"), ("messages",)],
    "dpo": [("prompt", "chosen", "rejected")],
}
# File-name fragments tried first when a folder holds several candidate files.
NAME_HINTS: dict[str, tuple[str, ...]] = {
    "sft": ("prompt_completion", "prompt-completion", "sft", "completion", "messages"),
    "dpo": ("dpo", "preference", "pref", "chosen"),
}
ROLES = {"system", "user", "assistant", "tool"}
DATA_SUFFIXES = (".jsonl", ".parquet")


@dataclass
class TrainData:
    """The formatted dataset plus what the model card says about where it came from."""

    dataset: Any  # datasets.Dataset
    path: Path
    columns_read: tuple[str, ...]
    n_read: int
    n_dropped: int = 0
    drop_reasons: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    hub: str | None = None  # the Hub dataset (hf://OWNER/NAME:CONFIG@SPLIT) read, if one was

    @property
    def n_train(self) -> int:
        return len(self.dataset)

    @property
    def where(self) -> str:
        """Where the records came from, for logs and the model card."""
        return self.hub or str(self.path)


def load_train_data(data: str | Path, method: Method) -> TrainData:
    """Locate, read and format the records ``method`` trains on; one clear error otherwise."""
    path = Path(data).expanduser()
    hub = None if path.exists() else parse_hub_spec(data, bare=True)
    if hub is not None:
        try:
            return _load_hub(hub, method)
        except MatrixAlignError as error:
            if str(data).startswith("hf:"):
                raise
            # OWNER/NAME is also how a mistyped local path looks: say both.
            raise MatrixAlignError(
                f"Training data not found: {path} is no local file or folder, and as a Hub "
                f"dataset: {error.message}",
                hint=error.hint,
            ) from None
    if not path.exists():
        raise MatrixAlignError(
            f"Training data not found: {path}",
            hint="pass a `matrix-align generate` output folder, a JSONL/Parquet file, a "
            "Hugging Face save_to_disk folder, or a Hub dataset id (OWNER/NAME)",
        )
    if path.is_dir() and _is_hf_disk_dataset(path):
        rows, columns = _read_hf_disk(path, method)
    else:
        file = _pick_file(path, method) if path.is_dir() else path
        columns = _satisfied(_file_columns(file), method)
        if columns is None:
            _raise_missing(file, _file_columns(file), method)
        rows = _read_file(file, (*columns, "source"))
        path = file
    assert columns is not None
    return _format(rows, path, columns, method)


def _load_hub(hub: HubDataset, method: Method) -> TrainData:
    """A Hub dataset's first config (hinted names first, then the default) whose columns
    fit ``method``; a config given in the spec is the only one tried."""
    configs: list[str | None] = [hub.config] if hub.config else [*config_names(hub)] or [None]
    hints = NAME_HINTS[method]

    def rank(config: str | None) -> int:
        name = (config or "").lower()
        return next((i for i, h in enumerate(hints) if h in name), len(hints))

    seen: list[str] = []
    for config in sorted(configs, key=rank):
        dataset = load_hub_dataset(hub, config)
        where = HubDataset(hub.repo, config, hub.split)
        columns = _satisfied(list(dataset.column_names), method)
        if columns is not None:
            keep = [c for c in (*columns, "source") if c in dataset.column_names]
            data = _format(dataset.select_columns(keep).to_list(), Path(hub.repo), columns, method)
            data.hub = str(where)
            return data
        seen.append(f"{config or 'default'}: [{', '.join(dataset.column_names)}]")
    raise MatrixAlignError(
        f"No config of the Hub dataset {hub.repo} has the columns {method} needs "
        f"({_needs(method)}). Found {'; '.join(seen)}.",
        hint="name another dataset, or use `--method sft` / `--method dpo` to match it",
    )


# ---- locating ----------------------------------------------------------------------------


def _is_hf_disk_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (path / "state.json").exists()


def _in_test_split(file: Path, folder: Path) -> bool:
    """Whether ``file``, found under ``folder``, is in an export's test split:
    ``<type>/test/<format>.*`` below the folder given."""
    parts = file.relative_to(folder).parts
    return len(parts) >= 3 and parts[-2] == TEST_DIR and parts[-3] in FILE_TYPES


def _pick_file(folder: Path, method: Method) -> Path:
    # generate writes OUTPUT/samples.jsonl and OUTPUT/exports/{jsonl,parquet}/<format>.*,
    # so look two folders down; the hinted export files are preferred over samples.jsonl.
    # An export's test split (<type>/test/, export --test-fraction) is never trained on.
    candidates = sorted(
        p
        for pattern in ("*", "*/*", "*/*/*")
        for p in folder.glob(pattern)
        if p.is_file() and p.suffix in DATA_SUFFIXES and not _in_test_split(p, folder)
    )
    if not candidates:
        raise MatrixAlignError(
            f"No .jsonl or .parquet file in {folder}.",
            hint="run `matrix-align generate` into this folder first, or pass a data file",
        )
    hints = NAME_HINTS[method]

    def rank(p: Path) -> tuple[int, int, str]:
        name = p.name.lower()
        hinted = next((i for i, h in enumerate(hints) if h in name), len(hints))
        return (hinted, len(p.relative_to(folder).parts), str(p))

    seen: list[tuple[Path, list[str]]] = []
    for file in sorted(candidates, key=rank):
        cols = _file_columns(file)
        if _satisfied(cols, method) is not None:
            return file
        seen.append((file, cols))
    listing = "; ".join(f"{f.relative_to(folder)}: [{', '.join(c) or 'empty'}]" for f, c in seen)
    raise MatrixAlignError(
        f"No file in {folder} has the columns {method} needs ({_needs(method)}). Found {listing}.",
        hint="for dpo, run generate with preference export (chosen = MATRIX answer, rejected "
        "= initial answer)"
        if method == "dpo"
        else "generate's SFT export has prompt/completion columns",
    )


def _needs(method: Method) -> str:
    return " or ".join("+".join(group) for group in REQUIRED[method])


def _satisfied(columns: list[str], method: Method) -> tuple[str, ...] | None:
    for group in REQUIRED[method]:
        if all(c in columns for c in group):
            return group
    return None


def _raise_missing(file: Path, columns: list[str], method: Method) -> None:
    # Name the columns of the closest group, so the message says exactly what to add.
    best = min(REQUIRED[method], key=lambda g: sum(c not in columns for c in g))
    missing = [c for c in best if c not in columns]
    raise MatrixAlignError(
        f"{file} lacks the column(s) {', '.join(missing)} that {method} needs "
        f"({_needs(method)}); it has: {', '.join(columns) or 'no columns'}.",
        hint="use `--method sft` for prompt/completion data, `--method dpo` for preference data",
    )


def _file_columns(file: Path) -> list[str]:
    """Column names from the Parquet schema, or the first JSONL record (no full read)."""
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(file).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise MatrixAlignError(f"{file} is not a readable Parquet file: {exc}") from None
    if file.suffix != ".jsonl":
        raise MatrixAlignError(
            f"Unsupported data file {file}: expected .jsonl or .parquet.",
            hint="or pass a folder written by Dataset.save_to_disk",
        )
    for _, record in _iter_jsonl(file):
        return list(record)
    return []


# ---- reading -----------------------------------------------------------------------------


def _iter_jsonl(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = file.open(encoding="utf-8")
    except OSError as exc:
        raise MatrixAlignError(f"Cannot read {file}: {exc}") from None

    def bad(lineno: int, error: json.JSONDecodeError | None, value: Any) -> None:
        if error is not None:
            raise MatrixAlignError(
                f"{file}:{lineno} is not valid JSON ({error.msg}).",
                hint="a JSONL file holds one JSON object per line",
            ) from None
        raise MatrixAlignError(f"{file}:{lineno} is not a JSON object.")

    with handle:
        yield from parse_jsonl(handle, bad)


def _read_file(file: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        present = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in columns if c in present])
        return table.to_pylist()
    return [{c: r.get(c) for c in columns if c in r} for _, r in _iter_jsonl(file)]


def _read_hf_disk(path: Path, method: Method) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    from datasets import DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, ...
        raise MatrixAlignError(f"{path} is not a readable save_to_disk dataset: {exc}") from None
    if isinstance(ds, DatasetDict):
        if "train" not in ds:
            raise MatrixAlignError(
                f"{path} holds splits {list(ds)} but no 'train' split.",
                hint="save the training split, or name it 'train'",
            )
        ds = ds["train"]
    columns = _satisfied(list(ds.column_names), method)
    if columns is None:
        _raise_missing(path, list(ds.column_names), method)
    assert columns is not None
    keep = [c for c in (*columns, "source") if c in ds.column_names]
    return ds.select_columns(keep).to_list(), columns


# ---- formatting --------------------------------------------------------------------------


class _Skip(Exception):
    """A record that cannot be trained on; counted and dropped, never fatal on its own."""


def _messages(value: Any, default_role: str) -> list[dict[str, str]]:
    """A message list with role/content only; a plain string becomes one message."""
    if isinstance(value, str):
        if not value.strip():
            raise _Skip("empty text")
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise _Skip("missing or empty value")
    out = []
    for msg in value:
        if not isinstance(msg, dict) or msg.get("role") not in ROLES:
            raise _Skip("message without a valid role")
        content = msg.get("content")
        if not isinstance(content, str):
            raise _Skip("message content is not text")
        out.append({"role": str(msg["role"]), "content": content})
    return out


def _answer(value: Any) -> list[dict[str, str]]:
    msgs = _messages(value, "assistant")
    if len(msgs) != 1 or msgs[0]["role"] != "assistant":
        raise _Skip("completion is not one assistant message")
    if not msgs[0]["content"].strip():
        raise _Skip("empty answer")
    return msgs


def _prompt(value: Any) -> list[dict[str, str]]:
    msgs = _messages(value, "user")
    if msgs[-1]["role"] == "assistant":
        raise _Skip("prompt ends with an assistant turn")
    return msgs


def _format_record(record: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    if columns == ("messages",):
        msgs = _messages(record.get("messages"), "user")
        if len(msgs) < 2:
            raise _Skip("conversation without a prompt and an answer")
        return {"prompt": _prompt(msgs[:-1]), "completion": _answer(msgs[-1:])}
    if columns == ("prompt", "completion"):
        return {
            "prompt": _prompt(record.get("prompt")),
            "completion": _answer(record.get("completion")),
        }
    chosen, rejected = _answer(record.get("chosen")), _answer(record.get("rejected"))
    if chosen[0]["content"].strip() == rejected[0]["content"].strip():
        # DPO learns nothing from a pair whose two answers are the same text.
        raise _Skip("chosen equals rejected")
    return {"prompt": _prompt(record.get("prompt")), "chosen": chosen, "rejected": rejected}


def _format(
    rows: list[dict[str, Any]], path: Path, columns: tuple[str, ...], method: Method
) -> TrainData:
    from datasets import Dataset

    formatted: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for record in rows:
        try:
            formatted.append(_format_record(record, columns))
        except _Skip as why:
            reasons[str(why)] += 1
            continue
        if record.get("source"):
            sources[str(record["source"])] += 1
    if not formatted:
        detail = ", ".join(f"{n} {why}" for why, n in reasons.most_common()) or "no records"
        raise MatrixAlignError(
            f"No usable {method} records in {path} ({len(rows)} read: {detail}).",
            hint="check that generate finished and wrote answers",
        )
    return TrainData(
        dataset=Dataset.from_list(formatted),
        path=path,
        columns_read=columns,
        n_read=len(rows),
        n_dropped=sum(reasons.values()),
        drop_reasons=reasons,
        sources=sources,
    )
