"""Every `matrix-align` command line shown in a shell block of README.md or docs/*.md names a
command and options the command line has: each is parsed against the app (its sub-commands
and each one's options), so an option renamed or dropped is noticed on the page that shows
it. The command is not run; a placeholder (`...`, `--judge-...`) is passed over."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from matrix_align.cli.app import app

_REPO = Path(__file__).resolve().parents[1]
PAGES = [_REPO / "README.md", *sorted((_REPO / "docs").glob("*.md"))]
SHELL_TAGS = {"", "bash", "sh", "shell", "console"}
# The program, as a reader types it: on the PATH, from the venv, or as a module.
_PROGRAM = re.compile(r"(?:^|[\s(]|bin/)(?:matrix-align|-m matrix_align)\s+(.*)")
# Where one command of a shell line ends.
_END = re.compile(r"\s(?:\||&&|\|\||;|>|2>|<|&)(?:\s|$)|\)|`")


def _shell_lines(text: str) -> list[str]:
    """The lines of the page's shell blocks, continuation lines joined."""
    lines: list[str] = []
    block: list[str] | None = None
    for line in text.splitlines():
        fence = line.strip()
        if fence.startswith("```"):
            if block is None:
                block = [] if fence[3:].strip() in SHELL_TAGS else None
                if block is None:  # another language: skip to its closing fence
                    block = ["<other>"]
            else:
                if block[:1] != ["<other>"]:
                    lines += "\n".join(block).replace("\\\n", " ").splitlines()
                block = None
            continue
        if block is not None:
            block.append(line)
    return lines


def _documented() -> list[tuple[str, str]]:
    """(page, command line after the program name) for every command the pages show."""
    found = []
    for page in PAGES:
        for line in _shell_lines(page.read_text(encoding="utf-8")):
            line = line.strip().removeprefix("$ ")
            if line.startswith("#"):
                continue
            match = _PROGRAM.search(line)
            while match is not None:  # one line may run it twice (`$(matrix-align ...)`)
                rest = re.sub(r"\s#.*$", "", match.group(1))
                found.append((page.name, _END.split(rest, maxsplit=1)[0].strip()))
                match = _PROGRAM.search(line, match.start(1))
    return found


DOCUMENTED = _documented()


def test_the_pages_show_commands() -> None:
    pages = {page for page, _ in DOCUMENTED}
    assert len(DOCUMENTED) >= 30 and {"README.md", "evaluate.md", "serve.md"} <= pages


@pytest.mark.parametrize(
    ("page", "line"), DOCUMENTED, ids=[f"{p}:{i}" for i, (p, _) in enumerate(DOCUMENTED)]
)
def test_a_documented_command_parses(page: str, line: str) -> None:
    words = shlex.split(line)
    command = typer.main.get_command(app)
    path = []
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        name = words.pop(0)
        sub = command.get_command(None, name)  # type: ignore[attr-defined]
        assert sub is not None, f"{page}: no command {' '.join([*path, name])!r} in {line!r}"
        command, path = sub, [*path, name]
    options = {"--help"}
    for param in command.params:
        options |= set(param.opts) | set(param.secondary_opts)
    unknown = [
        word.split("=", 1)[0]
        for word in words
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word) and word.split("=", 1)[0] not in options
    ]
    assert unknown == [], f"{page}: {' '.join(path)} has no {', '.join(unknown)}: {line!r}"
