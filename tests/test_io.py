"""File helpers: temp files beside their target, leftovers of killed writers swept, and a
destination or input that cannot be used reported as one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.io import (
    atomic_write_text,
    parse_assignments,
    parse_jsonl,
    read_json_object,
    read_yaml_mapping,
    temp_beside,
    writable_file,
    writable_folder,
)


def dead_pid() -> int:
    """The id of a process that has exited (as after kill -9)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_temp_files_are_unique_and_killed_writers_leftovers_are_swept(tmp_path: Path) -> None:
    target = tmp_path / "trace.json"
    orphan = tmp_path / f".trace.json.{dead_pid()}-dead.tmp"
    orphan.write_text("half")
    orphan_dir = tmp_path / f".trace.json.{dead_pid()}-dir.tmp"
    orphan_dir.mkdir()
    live = tmp_path / f".trace.json.{os.getpid()}-live.tmp"  # a writer still running
    live.write_text("busy")
    other = tmp_path / f".other.json.{dead_pid()}-x.tmp"  # another file's: not ours to touch
    other.write_text("x")
    first, second = temp_beside(target), temp_beside(target)
    assert first != second and first.exists() and second.exists()
    assert not orphan.exists() and not orphan_dir.exists()
    assert live.exists() and other.exists()
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"


def test_unusable_destinations_are_one_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(MatrixAlignError, match="is a file, not a folder"):
        writable_folder(a_file, "--output")
    with pytest.raises(MatrixAlignError, match="part of that path is a file"):
        writable_folder(a_file / "sub", "--output")
    with pytest.raises(MatrixAlignError, match="is a folder, not a file"):
        writable_file(tmp_path, "--trace-out")
    with pytest.raises(MatrixAlignError, match="cannot be written: .*file is a file"):
        writable_file(a_file / "trace.json", "--trace-out")
    assert writable_folder(tmp_path / "new" / "run", "--output").is_dir()
    assert not [p for p in (tmp_path / "new" / "run").iterdir()], "the probe is removed"
    # A run folder is made by its lock when the work starts: the check leaves nothing.
    assert not writable_folder(tmp_path / "later" / "run", "--output", keep=False).exists()
    assert not (tmp_path / "later").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(MatrixAlignError, match="not writable"):
            writable_folder(tmp_path, "--output")
    finally:
        tmp_path.chmod(0o700)


def test_config_files_that_are_not_yaml_text_are_clear_errors(tmp_path: Path) -> None:
    binary = tmp_path / "c.yaml"
    binary.write_bytes(b"n_roles: \xff\xfe\n")
    with pytest.raises(MatrixAlignError, match="not UTF-8"):
        read_yaml_mapping(binary)
    with pytest.raises(MatrixAlignError, match="is a folder"):
        read_yaml_mapping(tmp_path)
    with pytest.raises(MatrixAlignError, match="not found"):
        read_yaml_mapping(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(MatrixAlignError, match="mapping"):
        read_yaml_mapping(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == {}


@pytest.mark.parametrize(
    ("yaml_text", "json_text", "message"),
    [("[" * 100_000, "[" * 100_000, "nested too deeply"),
     ("- " * 5_000 + "x", '{"a":' * 100_000, "nested too deeply"),
     ("seed: " + "9" * 5_000, '{"seed": ' + "9" * 5_000 + "}",
      "integer of more than 4,300 digits")],
)  # fmt: skip
def test_files_past_the_parser_limits_are_one_clear_error(
    tmp_path: Path, yaml_text: str, json_text: str, message: str
) -> None:
    (tmp_path / "c.yaml").write_text(yaml_text)
    with pytest.raises(MatrixAlignError, match=f"Config file .*c.yaml .*{message}"):
        read_yaml_mapping(tmp_path / "c.yaml")
    (tmp_path / "c.json").write_text(json_text)
    with pytest.raises(MatrixAlignError, match=f"Run file .*c.json .*{message}"):
        read_json_object(tmp_path / "c.json", "Run file")


def test_a_huge_set_value_is_one_clear_error() -> None:
    with pytest.raises(MatrixAlignError, match="--set seed holds an integer of more than"):
        parse_assignments(["seed=" + "1" * 5_000], example="e.g. --set seed=1")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and devices")
def test_a_fifo_or_a_device_is_refused_before_it_is_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.yaml")  # reading it would wait for a writer forever
    with pytest.raises(MatrixAlignError, match="c.yaml is a FIFO"):
        read_yaml_mapping(tmp_path / "c.yaml")
    with pytest.raises(MatrixAlignError, match="/dev/zero is a device"):  # it never ends
        read_yaml_mapping("/dev/zero")


def test_json_object_files(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    for payload, why in ((b"\xff\xfe{}", "not UTF-8"), (b"[1, 2]", "JSON object"),
                         (b"{oops", "not valid JSON")):  # fmt: skip
        path.write_bytes(payload)
        with pytest.raises(MatrixAlignError, match=why) as info:
            read_json_object(path, "Run file", hint="remove it")
        assert info.value.hint == "remove it"
    path.write_text('{"a": 1}')
    assert read_json_object(path, "Run file") == {"a": 1}


def test_parse_jsonl_yields_objects_and_tells_of_the_other_lines() -> None:
    """Blank lines are skipped but counted; a bad line is passed to ``bad`` (decoding error,
    or the value that is not an object) and skipped when ``bad`` returns."""
    told: list[tuple[int, str | None, object]] = []

    def bad(number: int, error: json.JSONDecodeError | None, value: object) -> None:
        told.append((number, error.msg if error else None, value))

    lines = ['{"a": 1}\n', "\n", "{oops\n", "[1, 2]\n", '  {"b": 2}  \n']
    assert list(parse_jsonl(lines, bad)) == [(1, {"a": 1}), (5, {"b": 2})]
    assert told == [
        (3, "Expecting property name enclosed in double quotes", None),
        (4, None, [1, 2]),
    ]


def test_parse_jsonl_stops_where_bad_raises() -> None:
    def bad(number: int, error: json.JSONDecodeError | None, value: object) -> None:
        raise MatrixAlignError(f"line {number}")

    seen: list[int] = []
    with pytest.raises(MatrixAlignError, match="line 2"):
        for number, _ in parse_jsonl(['{"a": 1}', "7", '{"b": 2}'], bad):
            seen.append(number)
    assert seen == [1]
