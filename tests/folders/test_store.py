"""The append-only store: durable appends, resume by id, a torn last line truncated (never
duplicated), unreadable lines skipped but kept, one writer per folder, and no store or lock
written through a link."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.folders.store import DirectoryLock, JsonlStore, read_jsonl


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_append_then_reopen_indexes_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    with JsonlStore(path, index=lambda r: r["n"]) as store:
        store.append({"id": "a", "n": 1, "text": "line\nbreak"})
        store.append({"id": "b", "n": 2})
        assert "a" in store and store.entries == {"a": 1, "b": 2}
    assert all(line.endswith(b"\n") for line in lines(path)) and len(lines(path)) == 2
    store = JsonlStore(path, index=lambda r: r["n"])
    report = store.open()
    assert report.records == 2 and report.torn_bytes == 0 and store.ids == {"a", "b"}
    store.close()


def test_torn_last_line_is_truncated_and_redone_once(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    with JsonlStore(path) as store:
        store.append({"id": "a"})
        store.append({"id": "b"})
    with path.open("ab") as handle:  # what kill -9 in the middle of a write leaves
        handle.write(b'{"id":"c","text":"half wri')
    assert [r["id"] for _, r in read_jsonl(path)] == ["a", "b"]  # readers ignore it
    store = JsonlStore(path)
    report = store.open()
    assert report.torn_bytes > 0 and store.ids == {"a", "b"}
    store.append({"id": "c", "text": "whole"})
    store.close()
    records = [json.loads(line) for line in lines(path)]
    assert [r["id"] for r in records] == ["a", "b", "c"]
    assert records[-1]["text"] == "whole"


def test_corrupt_middle_line_is_skipped_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"id":"a"}\nGARBAGE\n{"id":"a"}\n{"id":"b"}\n')
    store = JsonlStore(path)
    report = store.open()
    store.close()
    assert store.ids == {"a", "b"}
    assert report.corrupt_lines == [2] and report.duplicates == 1
    assert b"GARBAGE" in path.read_bytes()
    assert [r["id"] for r in JsonlStore(path).records()] == ["a", "b"]


def test_rewrite_keeps_only_what_is_asked(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    store = JsonlStore(path)
    store.open()
    for key in "abc":
        store.append({"id": key})
    assert store.rewrite(lambda r: r["id"] != "b") == 1
    assert store.ids == {"a", "c"}
    store.append({"id": "d"})
    store.close()
    assert [json.loads(line)["id"] for line in lines(path)] == ["a", "c", "d"]


def test_second_writer_on_a_folder_is_refused(tmp_path: Path) -> None:
    with DirectoryLock(tmp_path), pytest.raises(MatrixAlignError, match="Another matrix-align"):
        DirectoryLock(tmp_path).acquire()
    with DirectoryLock(tmp_path):  # released again
        pass


def test_a_store_or_lock_that_is_a_link_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"one\ntwo\nlast line without newline")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "samples.jsonl").symlink_to(victim)
    with pytest.raises(MatrixAlignError, match="symbolic link, not a regular file") as caught:
        JsonlStore(folder / "samples.jsonl").open()
    assert "remove" in (caught.value.hint or "")
    (folder / ".lock").symlink_to(tmp_path / "created-by-the-lock")
    with pytest.raises(MatrixAlignError, match="symbolic link"):
        DirectoryLock(folder).acquire()
    assert victim.read_bytes() == b"one\ntwo\nlast line without newline"
    assert not (tmp_path / "created-by-the-lock").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_store_that_is_a_fifo_or_a_folder_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "samples.jsonl")
    for reader in (lambda p: JsonlStore(p).open(), lambda p: list(read_jsonl(p))):
        with pytest.raises(MatrixAlignError, match="a FIFO"):
            reader(tmp_path / "samples.jsonl")
    (tmp_path / "errors.jsonl").mkdir()
    with pytest.raises(MatrixAlignError, match="a folder, not a regular file"):
        JsonlStore(tmp_path / "errors.jsonl").open()


def test_a_line_past_the_parser_limits_is_skipped_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id":"a"}\n' + "[" * 100_000 + "\n" + '{"id":' + "1" * 5000 + "}\n")
    store = JsonlStore(path)
    report = store.open()
    store.close()
    assert store.ids == {"a"} and report.corrupt_lines == [2, 3]
    assert [r["id"] for _, r in read_jsonl(path)] == ["a"]


def test_the_lock_removes_the_folder_it_made_when_nothing_else_was_written(
    tmp_path: Path,
) -> None:
    with DirectoryLock(tmp_path / "new" / "run"):  # a command that refused its input
        pass
    assert not (tmp_path / "new").exists()
    with DirectoryLock(tmp_path / "used"):
        (tmp_path / "used" / "samples.jsonl").write_text("")
    assert (tmp_path / "used" / "samples.jsonl").exists()
    (tmp_path / "old").mkdir()
    with DirectoryLock(tmp_path / "old"):  # a folder the user made is theirs
        pass
    assert (tmp_path / "old").is_dir()
