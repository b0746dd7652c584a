"""The package's layers hold: every import between sub-packages and top-level modules, at
module level or inside a function, goes down (or sideways within the small shared modules,
without a circle). docs/architecture.md draws the same layers. The top layer, the command
line, stays thin: no module of cli/ over 400 lines, no command function over 60."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import matrix_align

_ROOT = Path(matrix_align.__file__).parent

# Lowest first. A unit is a sub-package or a top-level module of matrix_align.
LAYERS: list[tuple[str, ...]] = [
    # small shared modules...
    ("errors", "redact", "stats", "refusal", "prompt_files", "reading", "flags"),
    ("extras", "io", "text", "logs", "provenance", "run_file"),  # ...and those that use the others
    ("llm",),
    ("simulation",),
    ("estimate", "systems", "folders"),
    ("batch",),
    ("data",),
    ("evaluate",),
    ("train", "view", "hub", "serve", "humaneval", "sweep", "research"),
    ("cli", "inspect", "testing"),
    ("__init__", "__main__"),  # the public API and `python -m matrix_align`
]
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}
SHARED = set(LAYERS[0]) | set(LAYERS[1])  # may import each other, in a line, not a circle
# `__version__` is a plain string defined in the package root before it imports anything,
# so reading it (provenance, `--version`) is not an import of the layers above.
ALLOWED = {("provenance", "__init__"), ("cli", "__init__")}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "matrix_align":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _is_unit(name: str) -> bool:
    return (_ROOT / f"{name}.py").exists() or (_ROOT / name / "__init__.py").exists()


def _imports() -> dict[tuple[str, str], set[str]]:
    """(importing unit, imported unit) -> the files where it happens."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in _ROOT.rglob("*.py"):
        relative = path.relative_to(_ROOT.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        source = _unit(module) if module != "matrix_align" else "__init__"
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                targets = [base]
                if base == "matrix_align":  # a submodule, or a name of the package root
                    targets = [
                        f"matrix_align.{alias.name}" if _is_unit(alias.name) else base
                        for alias in node.names
                    ]
            else:
                continue
            for target in targets:
                unit = _unit(target)
                if unit is not None and source is not None and unit != source:
                    edges[(source, unit)].add(str(path.relative_to(_ROOT)))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {_unit(f"matrix_align.{p.stem}") for p in _ROOT.glob("*.py")}
    units |= {p.name for p in _ROOT.iterdir() if (p / "__init__.py").exists()}
    assert units - set(LEVEL) == set(), "add the new module or package to LAYERS"


def test_no_import_goes_up() -> None:
    upward = [
        f"{a} imports {b} ({', '.join(sorted(files))})"
        for (a, b), files in _imports().items()
        if (a, b) not in ALLOWED and not (LEVEL[b] < LEVEL[a] or (a in SHARED and b in SHARED))
    ]
    assert upward == []


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """The nodes that reach themselves."""

    def reaches_itself(start: str) -> bool:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                todo += graph.get(node, ())
        return False

    return sorted(node for node in list(graph) if reaches_itself(node))


def test_no_import_circles() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in _imports():
        if (a, b) not in ALLOWED:
            graph[a].add(b)
    assert _circles(graph) == []


PACKAGES = sorted(p.name for p in _ROOT.iterdir() if (p / "__init__.py").exists())


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for
    annotations only, never run: llm/registry.py names spec.py's ``BackendSpec`` so)."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                todo += child.orelse
                continue
            todo.append(child)
    return nodes


def test_every_package_is_checked_for_circles() -> None:
    assert {"cli", "evaluate", "llm", "research", "sweep"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_packages_modules_import_each_other_without_circles(package: str) -> None:
    """Inside a package too (evaluate's runner and report once imported each other; the
    embedded backend once read its default from the registry that builds it). Importing a
    module imports its package first, so that counts as an import of the package too; an
    import inside a function counts, one for annotations only does not."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in (_ROOT / package).rglob("*.py"):
        relative = path.relative_to(_ROOT.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            target = node.module if isinstance(node, ast.ImportFrom) else None
            if not target or not target.startswith(f"matrix_align.{package}."):
                continue
            parts = target.split(".")
            for end in range(3, len(parts) + 1):
                name = ".".join(parts[:end])
                if name != module and not module.startswith(name + "."):
                    graph[module].add(name)
    assert _circles(graph) == []


def test_the_architecture_page_names_every_module() -> None:
    """docs/architecture.md says what each module holds: each file is named there (its name
    or path in backticks; a package by its folder), so a new one is noticed."""
    text = (_ROOT.parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(_ROOT.rglob("*.py")):
        relative = path.relative_to(_ROOT).as_posix()
        names = [f"`{relative}`", f"`{path.name}`"]
        if path.name == "__init__.py" and path.parent != _ROOT:
            folder = path.parent.relative_to(_ROOT)
            names = [f"`{folder.as_posix()}/`", f"`{folder.name}/`"]
        if not any(name in text for name in names):
            missing.append(relative)
    assert missing == []


MAX_CLI_MODULE_LINES = 400
MAX_COMMAND_LINES = 60


def test_no_cli_module_is_over_400_lines() -> None:
    """A command module that grows moves a coherent piece out: its option groups, what it
    shows, or the logic into the library package it belongs to."""
    sizes = {
        path.name: len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((_ROOT / "cli").glob("*.py"))
    }
    assert {name: n for name, n in sizes.items() if n > MAX_CLI_MODULE_LINES} == {}


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
    """Lines of each command function, from its ``def`` line to the end of its body."""
    sizes: dict[str, int] = {}
    for path in sorted((_ROOT / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        commands = _commands(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in commands:
                assert node.end_lineno is not None
                sizes[f"{path.name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return sizes


def test_no_command_function_is_over_60_lines() -> None:
    """A command that needs more takes its options as groups (cli/option_groups.py) and puts
    its work in named helpers or in the library."""
    sizes = _command_sizes()
    assert {name: n for name, n in sizes.items() if n > MAX_COMMAND_LINES} == {}


def test_the_size_check_sees_every_command() -> None:
    """Every command of the app (humaneval's two included) is one the size check found."""
    import typer.main

    from matrix_align.cli.app import app

    group = typer.main.get_command(app)
    count = 0
    for command in group.commands.values():  # type: ignore[attr-defined]
        count += len(getattr(command, "commands", {None: None}))
    assert len(_command_sizes()) == count
