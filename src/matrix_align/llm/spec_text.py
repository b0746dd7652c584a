"""A backend spec written as one piece of text, for an option that names a whole model at
once (``evaluate --judge``): ``BACKEND[:MODEL][,KEY=VALUE]...``, e.g.
``openai:gpt-4o-mini,base-url=http://host:8000/v1,parallel=8``.

The text is read into ``BackendSpec`` and checked by it, which stays the one list of a
backend's settings: a KEY is one of its options' names without the dashes (``base-url``,
``api-key-env``, ``request-timeout``) or its field's name (``base_url``, ``timeout_s``), both
read from its fields, so a new backend setting is a new KEY here with no change to this file.
The MODEL is everything after the first colon (``openai:llama3:8b``), as in the model keys
that results record (``folders.records.model_key``). A KEY given twice gives a setting of
several values its list (``base-url=A,base-url=B``: two servers), and is an error elsewhere.
The same keys name the settings written as a mapping (``spec_settings``: a ``--config``
file's ``backend:`` section, a judge of its ``judges:``).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import pydantic

from matrix_align.errors import MatrixAlignError
from matrix_align.flags import flag_of
from matrix_align.llm.registry import BACKENDS
from matrix_align.llm.spec import BackendSpec

SYNTAX = "BACKEND[:MODEL][,KEY=VALUE...]"


def option_names() -> dict[str, str]:
    """The settings a text may give, by field: the option's name without dashes
    (``timeout_s``: ``request-timeout``); the settings that are no option are left out, as
    on the command line (an object made at run time, the run's --retries)."""
    return {
        field: flag_of(info.metadata).name(field)
        for field, info in BackendSpec.model_fields.items()
        if flag_of(info.metadata).on_cli
    }


def parse_spec(text: str, *, option: str = "--judge") -> BackendSpec:
    """The ``BackendSpec`` ``text`` names; any problem is one ``MatrixAlignError`` that quotes
    ``option`` and the text, raised before anything is built or called."""
    head, *pairs = [part.strip() for part in text.split(",") if part.strip()] or [""]
    backend, _, model = head.partition(":")
    where = f"in {option} {text!r}"
    if backend not in BACKENDS:
        raise MatrixAlignError(
            f"Unknown backend {backend!r} {where}.",
            hint=f"{SYNTAX}, with BACKEND one of: {', '.join(BACKENDS)}",
        )
    names = option_names()
    given: dict[str, Any] = {"backend": backend, **({"model": model} if model else {})}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        field = spec_field(key)
        if not sep or field is None:
            raise MatrixAlignError(
                f"Not a backend setting {where}: {pair!r}.",
                hint=f"{SYNTAX}, with KEY one of: {', '.join(names.values())}",
            )
        given[field] = _added(given.get(field), field, value.strip(), f"{names[field]} {where}")
    return checked_spec(given, where)


def spec_settings(values: Mapping[Any, Any], where: str) -> dict[str, Any]:
    """Backend settings written as a mapping (a config file's ``backend:`` section, a judge
    written as one), by field, every key and value checked (by ``BackendSpec``); a problem
    is one ``MatrixAlignError`` naming ``where``."""
    given: dict[str, Any] = {}
    for key, value in values.items():
        field = spec_field(str(key))
        if field is None:
            raise MatrixAlignError(
                f"Not a backend setting {where}: {key!r}.",
                hint=f"KEY: VALUE with KEY one of: {', '.join(option_names().values())}",
            )
        given[field] = value
    checked_spec(given, where)
    return given


def spec_field(key: str) -> str | None:
    """The field a key names, as typed, with dashes or underscores: the option's name
    without its dashes (``request-timeout``) or the field's (``timeout_s``); None for none."""
    fields = {
        typed: field
        for field, name in option_names().items()
        for typed in (name, field.replace("_", "-"))
    }
    return fields.get(key.strip().lower().replace("_", "-"))


def checked_spec(given: Mapping[str, Any], where: str) -> BackendSpec:
    """``BackendSpec(**given)``, its validation errors one ``MatrixAlignError`` naming each
    setting by its option's name and ``where``."""
    names = option_names()
    try:
        return BackendSpec(**given)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{names.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else ''}: {e['msg']}"
            for e in exc.errors()
        )
        raise MatrixAlignError(f"Invalid setting {where}: {problems}.") from None


def _added(earlier: Any, field: str, value: str, what: str) -> Any:
    """The setting's value with ``value`` added: a second value makes a list, which only a
    setting of several values (a tuple or list field) takes."""
    if earlier is None:
        return value
    kind = BackendSpec.model_fields[field].annotation
    if typing.get_origin(kind) not in (tuple, list):
        raise MatrixAlignError(f"A single setting is given twice: {what}.")
    return [*(earlier if isinstance(earlier, list) else [earlier]), value]
