"""The command layer stays thin: no command function is over 60 lines, from its ``def``
line to the end of its body. A command that needs more takes its options as groups
(cli/option_groups.py) and puts its work in named helpers or in the library."""

from __future__ import annotations

import ast
from pathlib import Path

import typer.main

import matrix_align.cli
from matrix_align.cli.app import app

CLI = Path(matrix_align.cli.__file__).parent
MAX_LINES = 60


def _is_command_registration(node: ast.AST) -> bool:
    """``X.command(...)``: the call whose result registers a function as a command."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "command"
    )


def _commands(tree: ast.Module) -> set[str]:
    """Names of the functions a module registers as commands, by ``app.command(...)(f)`` or
    by the decorator ``@app.command(...)``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_command_registration(node.func):
            names |= {arg.id for arg in node.args if isinstance(arg, ast.Name)}
        if isinstance(node, ast.FunctionDef) and any(
            _is_command_registration(d) for d in node.decorator_list
        ):
            names.add(node.name)
    return names


def _command_sizes() -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        commands = _commands(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in commands:
                assert node.end_lineno is not None
                sizes[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return sizes


def test_no_command_function_is_over_60_lines() -> None:
    sizes = _command_sizes()
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"command functions over {MAX_LINES} lines: {too_long}"


def test_the_check_sees_every_command() -> None:
    """Every command of the app (humaneval's two included) is one the size check found."""
    group = typer.main.get_command(app)
    count = 0
    for command in group.commands.values():  # type: ignore[attr-defined]
        count += len(getattr(command, "commands", {None: None}))
    assert len(_command_sizes()) == count
