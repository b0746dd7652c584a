"""Option groups: several typer options declared once, as the fields of a dataclass, and
handed to a command as one object.

A group is a ``@dataclass(kw_only=True)`` subclass of ``OptionGroup`` whose fields are
annotated with typer's ``Annotated[type, typer.Option(...)]`` and have their defaults. A
command takes the group as one parameter (``run: GenerateRun``) and is decorated with
``@with_option_groups``: typer then sees the group's fields as the command's own options,
in the place of that parameter, and the command receives the group object built from them.

A library settings model is a group too, written once, in the library: ``group(Model,
prefix, panel)`` derives the options from the model's fields (names, types, defaults, bounds
and help; ``matrix_align.flags`` for names that are not ``--field-name``), and a command that
takes ``Annotated[Model, group(Model, ...)]`` receives the model itself, validated.

typer reads a command's parameters from ``inspect.signature(func, eval_str=True)`` (which
returns ``__signature__`` when a function has one) and its types from
``typing.get_type_hints(func)`` (which reads ``__annotations__``), and calls it with every
parameter by keyword; the wrapper sets the first two and rebuilds the groups in the third.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from matrix_align.flags import Flag

F = TypeVar("F", bound=Callable[..., Any])


class OptionGroup:
    """Base of option groups (see the module's docstring)."""

    @classmethod
    def parameters(cls) -> list[inspect.Parameter]:
        """The group's fields as keyword parameters, with their typer annotations and
        defaults, in declaration order."""
        hints = typing.get_type_hints(cls, include_extras=True)
        return [
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=hints[field.name],
                default=inspect.Parameter.empty
                if field.default is dataclasses.MISSING
                else field.default,
            )
            for field in dataclasses.fields(cls)  # type: ignore[arg-type]
            if field.init
        ]

    @classmethod
    def make(cls, values: dict[str, Any]) -> Any:
        """What the command receives for the options' values (by field name)."""
        return cls(**values)


def group(model: Any, prefix: str = "", panel: str | None = None) -> type[OptionGroup]:
    """The options of a pydantic settings model's fields (all but the ``NOT_A_FLAG`` ones),
    in the help panel ``panel``; ``prefix`` makes ``--backend`` ``--judge-backend`` (a second
    group of the same model; short aliases are dropped). The group makes the model: options
    not given are left out, so the model's own defaults (and those it reads from the
    environment) apply, and its validation errors are one clear error naming the option."""
    options: list[tuple[str, Any, Any]] = []
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        flag = next((m for m in info.metadata if isinstance(m, Flag)), Flag())
        if not flag.on_cli:
            continue
        if info.is_required():
            raise TypeError(f"{model.__name__}.{name}: an option group's fields need defaults")
        decls = _names(name, flag, prefix)
        names[name] = decls[0]
        # A computed or repeatable default is the model's to make: the option's is None.
        computed = info.default_factory is not None or isinstance(info.default, tuple | list)
        default = None if computed else info.default
        options.append((name, _annotation(model, name, info, decls, panel), default))
    made = dataclasses.make_dataclass(
        f"{prefix.title()}{model.__name__}Options",
        [(name, annotation, dataclasses.field(default=d)) for name, annotation, d in options],
        bases=(_ModelGroup,),
        kw_only=True,
    )
    made.model, made.flag_names = model, names  # type: ignore[attr-defined]
    return made


class _ModelGroup(OptionGroup):
    """A group derived from a settings model (``group``); it makes the model."""

    model: Any
    flag_names: dict[str, str]

    @classmethod
    def make(cls, values: dict[str, Any]) -> Any:
        import pydantic

        from matrix_align.errors import MatrixAlignError

        given = {name: value for name, value in values.items() if value is not None}
        try:
            return cls.model(**given)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{cls.flag_names.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else ''}: "
                f"{e['msg']}"
                for e in exc.errors()
            )
            raise MatrixAlignError(f"Invalid option: {problems}.") from None


def _names(name: str, flag: Flag, prefix: str) -> tuple[str, ...]:
    decls = flag.names or ("--" + name.replace("_", "-"),)
    if not prefix:
        return decls
    return tuple(f"--{prefix}-{d.removeprefix('--')}" for d in decls if d.startswith("--"))


def _annotation(model: Any, name: str, info: Any, decls: tuple[str, ...],
                panel: str | None) -> Any:  # fmt: skip
    """``Annotated[type, typer.Option(...)]`` for one field: a tuple or list of values is a
    repeatable option; ``ge``/``le`` are typer's ``min``/``max`` (checked as it parses)."""
    kind = info.annotation
    if typing.get_origin(kind) in (tuple, list):
        kind = list[typing.get_args(kind)[0]] | None  # type: ignore[index]
    elif not _typer_can_parse(kind):
        raise TypeError(
            f"{model.__name__}.{name}: typer cannot parse {kind!r}; mark the field NOT_A_FLAG"
        )
    bounds = {
        key: getattr(m, attr)
        for m in info.metadata  # pydantic's annotated_types.Ge / Le
        for key, attr in (("min", "ge"), ("max", "le"))
        if hasattr(m, attr)
    }
    option = typer.Option(*decls, help=info.description, rich_help_panel=panel, **bounds)
    return Annotated[kind, option]


def _typer_can_parse(kind: Any) -> bool:
    """A plain value (or Optional of one), as typer parses options."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return all(_typer_can_parse(arg) for arg in typing.get_args(kind))
    return kind in (str, int, float, bool, type(None)) or typing.get_origin(kind) is typing.Literal


def group_of(annotation: Any) -> type[OptionGroup] | None:
    """The option group a parameter's annotation names: an ``OptionGroup`` subclass, or one
    in the metadata of ``Annotated[Model, group(Model, ...)]``; None for a plain option."""
    candidates = [annotation]
    if typing.get_origin(annotation) is Annotated:
        candidates = list(annotation.__metadata__)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, OptionGroup):
            return candidate
    return None


def with_option_groups(func: F) -> F:
    """``func`` as typer should see it: each parameter typed by an ``OptionGroup`` replaced
    by the group's options; at call time the group object takes their values."""
    hints = typing.get_type_hints(func, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[OptionGroup], list[str]]] = {}
    for param in inspect.signature(func).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        found = group_of(annotation)
        if found is not None:
            fields = found.parameters()
            groups[param.name] = (found, [field.name for field in fields])
            parameters.extend(fields)
        else:
            parameters.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                                            annotation=annotation))  # fmt: skip
    names = [param.name for param in parameters]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TypeError(f"{func.__qualname__}: option {twice[0]!r} is declared twice")

    @functools.wraps(func)
    def wrapper(**values: Any) -> Any:
        for name, (group, fields) in groups.items():
            values[name] = group.make({field: values.pop(field) for field in fields})
        return func(**values)

    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=hints.get("return", inspect.Signature.empty)
    )
    wrapper.__annotations__ = {param.name: param.annotation for param in parameters}
    if "return" in hints:
        wrapper.__annotations__["return"] = hints["return"]
    return typing.cast(F, wrapper)
