"""The README's tour runs as written after its first command: that command makes `.venv` with
the `local` extra and does not activate it, so a tour command calls the venv's own programs,
and a command that needs another extra comes after the line installing it."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_README = (_REPO / "README.md").read_text(encoding="utf-8")
_EXTRAS = tomllib.loads((_REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "optional-dependencies"
]
# What each command needs beyond the first command's `local` extra.
NEEDS = {"serve": "serve", "train": "train", "inspect": "inspect"}


def _first_command() -> str:
    start = _README.split("## Start here", 1)[1]
    return re.search(r"```bash\n(.*?)\n```", start, re.S).group(1)  # type: ignore[union-attr]


def _tour_commands() -> list[str]:
    tour = _README.split("## A tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", tour, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split(" #", 1)[0].strip() for line in lines if line.strip()]


def test_the_first_command_makes_the_venv_with_the_local_extra() -> None:
    first = _first_command()
    assert "python3 -m venv .venv" in first and ".venv/bin/pip install -e '.[local]'" in first


def test_every_tour_command_calls_the_venv_and_installs_what_it_needs() -> None:
    commands = _tour_commands()
    assert commands
    installed = {"local"}
    for line in commands:
        if line.startswith("#") or line.startswith(("vllm ", "llama-server ", "export ")):
            continue  # a comment, or a server of the reader's own
        words = shlex.split(line)
        program = words[0]
        assert program.startswith(".venv/bin/"), line
        if program == ".venv/bin/pip" and "-e" in words:
            extras = re.search(r"\.\[([^\]]+)\]", line).group(1)  # type: ignore[union-attr]
            installed |= set(extras.split(","))
            assert installed <= set(_EXTRAS), line
        command = "inspect" if program == ".venv/bin/inspect" else (words + [""])[1]
        if program != ".venv/bin/pip" and command in NEEDS:
            assert NEEDS[command] in installed, f"{line!r} needs [{NEEDS[command]}] first"


def test_the_scene_heavy_generate_of_the_tour_carries_a_time_warning() -> None:
    section = _README.split("### Datasets, training, evaluation, viewing", 1)[1]
    section = section.split("\n### ", 1)[0].split("\n## ", 1)[0]
    assert "generate --source advbench:matrix:20" in section  # the paper's 5 x 5 sizes
    assert "**Time:**" in section and "--roles 2 --steps 2" in section
