"""``matrix-align import``: someone else's chat data as this project's sample records.

The point is to train on the MATRIX authors' released data (FastChat's ``matrix_data.json``)
or any FastChat/ShareGPT file with the same commands as on our own: the output folder holds
a ``samples.jsonl`` of ``SampleRecord`` lines, the file a ``generate`` run writes, so
``export`` and ``train`` read it unchanged.

**Multi-turn conversations.** Our samples are prompt -> completion pairs whose loss covers
the completion only. FastChat trains a conversation as one sequence with the loss on every
assistant turn; the equivalent here is one sample per assistant turn, its prompt the whole
conversation before it (``turns="each"``, the default): every assistant turn is learnt, each
in the context it had. ``turns="last"`` makes one sample per conversation instead, the last
answer, with the earlier turns as context only. An assistant turn becomes a sample when it
has text and answers a user turn; assistant turns before the first user turn are dropped, as
FastChat drops them; the others (empty, or following another assistant turn) are skipped and
counted.

**Records.** ``mode`` is ``import`` (we do not know how the answers were made), ``source``
is ``import:<file name>`` unless named, ``trace`` and ``initial_response`` are empty (so no
preference pairs and no scene audit), and ``meta`` keeps the record's other fields with
``source_id`` (its id), ``turn``/``turns`` (which of its answers this is) and ``import``
(the file and the record's position in it). Ids hash the source, the record's position and
id and the turn, so they are stable across re-imports of the same file.

**Writing.** Everything is read and checked first (``data.sharegpt``); the folder is then
built beside its final name and renamed into place, exports included, so an interruption
leaves either the old folder or the whole new one, never half of one. An existing folder is
replaced only with ``overwrite`` and only when an earlier import made it: a ``generate``
folder holds hours of model time. The import holds the folder's lock (the one ``generate``,
``evaluate`` and ``export`` take) from its first check to its return, and checks the folder
again under it, so a command started meanwhile is refused instead of being moved aside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix_align.data.sharegpt import Conversation, read_conversations
from matrix_align.data.turn_growth import check_growth
from matrix_align.errors import MatrixAlignError
from matrix_align.folders import RUN, SAMPLES, SUMMARY
from matrix_align.folders.records import ChatMessage
from matrix_align.folders.samples import SampleRecord
from matrix_align.folders.store import LOCK_FILE, DirectoryLock, dumps_line
from matrix_align.io import atomic_write_json, temp_beside, writable_folder
from matrix_align.provenance import provenance_record
from matrix_align.text import require_unicode

TURN_MODES: tuple[str, ...] = ("each", "last")
IMPORT_MODE = "import"  # the ``mode`` of imported samples

# Why an assistant turn did not become a sample (counted in the summary).
EMPTY = "empty answer"
AFTER_ASSISTANT = "follows another assistant turn"
BEFORE_USER = "before the first user turn (dropped, as FastChat does)"


@dataclass
class ImportResult:
    output: Path
    source: str
    conversations: int
    samples: int
    without_answer: int  # conversations that gave no sample
    skipped: Counter[str] = field(default_factory=Counter)  # assistant turns, by reason
    exports: dict[str, int] = field(default_factory=dict)  # format -> rows

    def counts(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "samples": self.samples,
            "conversations_without_answer": self.without_answer,
            "answers_skipped": dict(self.skipped),
        }


def _sample_id(source: str, conversation: Conversation, turn: int) -> str:
    payload = json.dumps(
        {"source": source, "record": conversation.position, "id": conversation.id, "turn": turn},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """The record's own fields must survive JSON exactly; odd types become strings."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def conversation_samples(
    conversation: Conversation, *, source: str, turns: str, file_name: str
) -> tuple[list[SampleRecord], Counter[str]]:
    """The samples one conversation gives (see the module's docstring), and why any of its
    assistant turns gave none."""
    skipped: Counter[str] = Counter()
    messages: list[ChatMessage] = []
    targets: list[int] = []  # indexes into ``messages`` of the answers to learn
    seen_user = False
    for turn in conversation.turns:
        if turn.role == "assistant" and not seen_user:
            skipped[BEFORE_USER] += 1
            continue
        seen_user = seen_user or turn.role == "user"
        if turn.role == "assistant":
            if not turn.content.strip():
                skipped[EMPTY] += 1
            elif messages and messages[-1].role != "user":
                skipped[AFTER_ASSISTANT] += 1
            else:
                targets.append(len(messages))
        messages.append(ChatMessage(role=turn.role, content=turn.content))  # type: ignore[arg-type]
    numbered = list(enumerate(targets, start=1))
    samples: list[SampleRecord] = []
    for number, index in numbered if turns == "each" else numbered[-1:]:
        meta = {
            **_jsonable(conversation.fields),
            "source_id": conversation.id if conversation.id is not None else "",
            "turn": number,
            "turns": len(targets),
            "import": {"file": file_name, "record": conversation.position},
        }
        samples.append(
            SampleRecord(
                id=_sample_id(source, conversation, number),
                source=source,
                mode=IMPORT_MODE,
                prompt=messages[:index],
                completion=[messages[index]],
                initial_response="",
                trace="",
                meta=meta,
            )
        )
    return samples, skipped


def import_conversations(
    path: str | Path,
    output: str | Path,
    *,
    turns: str = "each",
    source: str | None = None,
    overwrite: bool = False,
    export: bool = True,
    log: Callable[[str], None] | None = None,
) -> ImportResult:
    """Read ``path`` (FastChat/ShareGPT), write ``output`` with samples.jsonl, run.json,
    summary.json and, with ``export``, the TRL exports; see the module's docstring."""
    if turns not in TURN_MODES:
        raise MatrixAlignError(f"Unknown --turns {turns!r}.", hint="each or last")
    path, output = Path(path), Path(output)
    name = source or f"import:{path.name}"
    if not name.strip():
        raise MatrixAlignError("--source-name must not be empty.")
    require_unicode(name, "--source-name (or the file's name)")
    check_destination(output, overwrite=overwrite)
    # The folder lock every writer takes: a generate (or another import) started meanwhile
    # is refused instead of having its folder moved aside when this one publishes.
    with DirectoryLock(output, hint="wait for it to finish, or give --output another folder"):
        # Again under the lock: the folder may have been written between the first check
        # and taking the lock.
        check_destination(output, overwrite=overwrite)
        return _import(path, output, name, turns=turns, overwrite=overwrite, export=export,
                       log=log)  # fmt: skip


def _import(
    path: Path,
    output: Path,
    name: str,
    *,
    turns: str,
    overwrite: bool,
    export: bool,
    log: Callable[[str], None] | None,
) -> ImportResult:
    """Read, check and publish, with ``output``'s lock held."""
    conversations = read_conversations(path)
    samples: list[SampleRecord] = []
    result = ImportResult(output, name, len(conversations), 0, 0)
    for conversation in conversations:
        found, skipped = conversation_samples(
            conversation, source=name, turns=turns, file_name=path.name
        )
        samples.extend(found)
        result.skipped.update(skipped)
        result.without_answer += not found
    result.samples = len(samples)
    check_growth(path, conversations, samples)
    if not samples:
        raise MatrixAlignError(
            f"{path}: none of its {len(conversations)} conversation(s) has an assistant answer "
            "to a user turn, so there is nothing to train on.",
            hint="check that the answers are 'gpt' (or 'assistant') turns with text",
        )
    from matrix_align.llm.model_files import sha256_file

    revision = f"sha256:{sha256_file(path)}"
    details = {"file": str(path), "revision": revision, "turns": turns, "source": name,
               "formats": sorted({c.format for c in conversations})}  # fmt: skip
    run = {
        "kind": "import",
        "import": details,
        "provenance": provenance_record(
            datasets={name: {"origin": f"file:{path}", "revision": revision}}
        ),
    }
    _publish(output, samples, run, result, export=export, overwrite=overwrite, log=log)
    return result


def is_import_folder(folder: Path) -> bool:
    try:
        run = json.loads((folder / RUN).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(run, dict) and run.get("kind") == "import"


def check_destination(output: Path, *, overwrite: bool) -> None:
    """``output`` is new, empty (but for its lock), or (with ``overwrite``) an earlier
    import; its parent takes files."""
    if output.exists() and not output.is_dir():
        raise MatrixAlignError(
            f"--output {output} is a file, not a folder.", hint="give --output a folder"
        )
    if output.is_dir() and any(p.name != LOCK_FILE for p in output.iterdir()):
        if not is_import_folder(output):
            raise MatrixAlignError(
                f"--output {output} already holds files and is not an earlier import.",
                hint="give --output a new or empty folder (import never replaces a generate "
                "or evaluate folder)",
            )
        if not overwrite:
            raise MatrixAlignError(
                f"--output {output} already holds an import.",
                hint="pass --overwrite to replace it, or give another --output",
            )
    # The lock makes the folders when the import starts, and removes them if it fails.
    writable_folder(output.parent, "--output's parent folder", keep=False)


def _publish(
    output: Path,
    samples: list[SampleRecord],
    run: dict[str, Any],
    result: ImportResult,
    *,
    export: bool,
    overwrite: bool,
    log: Callable[[str], None] | None,
) -> None:
    """Build the folder beside ``output``, then rename it into place (``output``'s lock
    held by the caller). The new folder arrives locked, so no writer gets in before this
    import has returned."""
    staging = temp_beside(output, folder=True)
    old: Path | None = None
    staging_lock = DirectoryLock(staging)
    try:
        with (staging / SAMPLES).open("wb") as handle:
            for sample in samples:
                handle.write(dumps_line(sample))
            handle.flush()
            os.fsync(handle.fileno())
        atomic_write_json(staging / RUN, run)
        summary: dict[str, Any] = {"kind": "import", "counts": result.counts(), **run["import"]}
        if export:
            from matrix_align.data.export import EXPORT_DIR, export_samples

            if log is not None:
                log("writing exports (jsonl, parquet, datasets folder)")
            exported = export_samples(staging / SAMPLES, staging / EXPORT_DIR)
            result.exports = dict(exported.rows)
            summary["exports"] = result.exports
        atomic_write_json(staging / SUMMARY, summary)
        staging_lock.acquire()
        check_destination(output, overwrite=overwrite)  # what is moved aside is what was checked
        if output.is_dir():
            old = temp_beside(output, folder=True)
            os.replace(output, old)  # moved aside, removed once the new one is in place
        os.replace(staging, output)
    except BaseException:
        if old is not None and not output.exists():
            os.replace(old, output)  # put the earlier import back
            old = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        staging_lock.release()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
