"""Prompt templates (Jinja2 files beside this module), rendered with ``render(name, **values)``.

The files here are the templates a scene at the default settings uses. ``paper/`` holds the
variants that the paper profile's switches select (the plan that follows the first answer,
critiques for every action, the final prompt with a worked example), and ``votes/`` the
re-rating of ``harm_votes``; they sit in their own folders so that the hash of the default
templates, which sample ids include, is the one it was before they existed.

A researcher replaces any template by name with ``--prompts DIR`` (``NAME.j2`` files):
``read_overrides`` checks each one before any call (a known name, valid Jinja2, and exactly
the variables the built-in template uses), and ``render`` uses it in place of the built-in.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox
from pydantic_core import PydanticCustomError

FOLDER = Path(__file__).parent
VARIANTS = ("paper", "votes")  # the subfolders of templates only a switch selects


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("matrix_align.simulation", "prompts"),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        keep_trailing_newline=True,
        autoescape=False,  # plain-text prompts, never HTML
    )


@cache
def built_in() -> dict[str, str]:
    """Every template's name and its file, relative to this folder: the default ones, then
    those only a switch selects (``VARIANTS``)."""
    files = [*sorted(FOLDER.glob("*.j2"))]
    for folder in VARIANTS:
        files += sorted((FOLDER / folder).glob("*.j2"))
    return {path.stem: path.relative_to(FOLDER).as_posix() for path in files}


@cache
def variables(name: str) -> frozenset[str]:
    """The variables the built-in template ``name`` uses: what its call passes."""
    source = (FOLDER / built_in()[name]).read_text("utf-8")
    return frozenset(jinja2.meta.find_undeclared_variables(_environment().parse(source)))


@cache
def _sandbox() -> jinja2.sandbox.SandboxedEnvironment:
    """The environment of overrides: sandboxed, since an override's text may come from
    elsewhere than this package (a stored trace, a request to `serve`), and a template can
    otherwise reach any attribute of the values it is given."""
    return jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


@cache
def _compiled(text: str) -> jinja2.Template:
    return _sandbox().from_string(text)


def _refuse(message: str, hint: str) -> PydanticCustomError:
    """A refused override, as a validation error of the ``prompts`` setting (so every command
    and `serve` report it as bad input), the fix in the message."""
    return PydanticCustomError("prompt_template", "{message} ({hint})",
                               {"message": message, "hint": hint})  # fmt: skip


def render(name: str, overrides: dict[str, str] | None = None, **values: object) -> str:
    """Template ``name`` filled with ``values``; ``overrides`` (name -> text) replaces the
    built-in template of that name."""
    if overrides and name in overrides:
        return _compiled(overrides[name]).render(**values)
    return _environment().get_template(built_in()[name]).render(**values)


def read_overrides(value: Any) -> dict[str, str]:
    """The templates that replace built-in ones: from a folder of ``NAME.j2`` files, or a
    mapping name -> text (a stored configuration). Nothing (None, empty): no override.
    Refused with one clear error, before any call: an unknown name, invalid Jinja2, or a
    variable the built-in template does not use (unknown) or uses and this one does not
    (missing: what it held would silently leave the prompt)."""
    if not value:
        return {}
    if isinstance(value, dict):
        texts = {str(name): str(text) for name, text in value.items()}
        where = "the prompt overrides"
    else:
        folder = Path(str(value)).expanduser()
        if not folder.is_dir():
            raise _refuse(
                f"the prompts folder {folder} does not exist or is not a folder",
                "give --prompts a folder of NAME.j2 files, one per template to replace",
            )
        texts = {path.stem: _read(path) for path in sorted(folder.glob("*.j2"))}
        where = str(folder)
        if not texts:
            raise _refuse(
                f"the prompts folder {folder} holds no .j2 template",
                "name each file after the template it replaces, e.g. setup.j2",
            )
    for name, text in texts.items():
        _check(name, text, where)
    return texts


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(
            f"cannot read the template {path}: {exc}", "templates are UTF-8 text"
        ) from None


def _check(name: str, text: str, where: str) -> None:
    templates = built_in()
    if name not in templates:
        raise _refuse(
            f"{where}: {name}.j2 replaces no template",
            f"templates: {', '.join(sorted(templates))}; docs/simulation.md",
        )
    try:
        used = jinja2.meta.find_undeclared_variables(_sandbox().parse(text))
    except jinja2.TemplateSyntaxError as exc:
        raise _refuse(
            f"{where}: {name}.j2 is not a valid template (line {exc.lineno}: {exc.message})",
            "templates are Jinja2: {{ variable }}, {% if %}...{% endif %}",
        ) from None
    expected = variables(name)
    unknown, missing = sorted(used - expected), sorted(expected - used)
    if unknown or missing:
        problems = [
            *([f"unknown {', '.join(unknown)}"] if unknown else []),
            *([f"missing {', '.join(missing)}"] if missing else []),
        ]
        raise _refuse(
            f"{where}: {name}.j2 has the wrong variables: {'; '.join(problems)}",
            f"{name}.j2 takes exactly: {', '.join(sorted(expected)) or '(none)'}; to leave one "
            "out on purpose, use it inside {% if false %}...{% endif %}",
        )


def templates_sha256(overrides: dict[str, str] | None = None, variants: bool = False) -> str:
    """sha256 over the templates a scene renders, in file-name order: each file's name, a
    NUL, its text and a NUL (moving text between two templates changes it too). With
    neither ``overrides`` nor ``variants``: the default templates, the hash sample ids have
    always included; else every template, the ``VARIANTS`` too, each replaced by its
    override."""
    overrides = overrides or {}
    variants = variants or bool(overrides)
    files = {
        Path(path).name: (
            overrides[name].encode("utf-8") if name in overrides else (FOLDER / path).read_bytes()
        )
        for name, path in built_in().items()
        if variants or "/" not in path
    }
    digest = hashlib.sha256()
    for file_name in sorted(files):
        digest.update(file_name.encode() + b"\0" + files[file_name] + b"\0")
    return digest.hexdigest()
