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
takes ``Annotated[Model, group(Model, ...)]`` receives the model itself, validated. A
layered group (``group(Model, ..., layered=True)``) is the top layer over others the command
reads (a YAML file, ``--set``: ``cli.options.SimulationOptions``): the command receives the
options object and makes the model from every layer.

typer reads a command's parameters from ``inspect.signature(func, eval_str=True)`` (which
returns ``__signature__`` when a function has one) and its types from
``typing.get_type_hints(func)`` (which reads ``__annotations__``), and calls it with every
parameter by keyword; the wrapper sets the first two and rebuilds the groups in the third.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from matrix_align.flags import Flag, flag_of

F = TypeVar("F", bound=Callable[..., Any])
# Fills a command's options not given from lower layers: (values by group, groups by name,
# typer's context of the command, None when the function is called without a command line).
Beneath = Callable[[dict[str, dict[str, Any]], dict[str, Any], typer.Context | None], None]
CONTEXT = "typer_context"  # the parameter that receives it


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


def group(model: Any, prefix: str = "", panel: str | None = None, *,
          layered: bool = False) -> type[OptionGroup]:  # fmt: skip
    """The options of a pydantic settings model's fields (all but the ``NOT_A_FLAG`` ones),
    in the help panel ``panel``; ``prefix`` makes ``--backend`` ``--judge-backend`` (a second
    group of the same model; short aliases are dropped).

    Every option defaults to None, "not given", and its help quotes the model's default: an
    option not given is left out, so the model's own default (or what it reads from the
    environment) applies. The group makes the model, its validation errors one clear error
    naming the option. ``layered``: the options are the top layer over others the command
    reads (a YAML file, ``--set``), so the group gives the options object (``given()``: the
    values given, by field) and the model checks every layer alike once they are merged: the
    options carry no bounds or choices of their own, and an error reads the same whichever
    layer the value came from."""
    options: list[tuple[str, Any]] = []
    names: dict[str, str] = {}
    for name, info in model.model_fields.items():
        flag = flag_of(info.metadata)
        if not flag.on_cli:
            continue
        if info.is_required():
            raise TypeError(f"{model.__name__}.{name}: an option group's fields need defaults")
        decls = _names(name, flag, prefix)
        names[name] = decls[0].split("/")[0]
        options.append((name, _annotation(model, name, info, flag, decls, panel, layered)))
    made = dataclasses.make_dataclass(
        f"{prefix.title()}{model.__name__}Options",
        [(name, annotation, dataclasses.field(default=None)) for name, annotation in options],
        bases=(_LayeredGroup if layered else _ModelGroup,),
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


class _LayeredGroup(_ModelGroup):
    """A layered group (``group(..., layered=True)``): the command receives the options
    object, and merges ``given()`` over its other layers before it makes the model."""

    @classmethod
    def make(cls, values: dict[str, Any]) -> Any:
        return cls(**values)

    def given(self) -> dict[str, Any]:
        """The model's settings given as options, by field name (None: not given)."""
        return {name: getattr(self, name) for name in self.flag_names}


def _names(name: str, flag: Flag, prefix: str) -> tuple[str, ...]:
    decls = flag.names or ("--" + name.replace("_", "-"),)
    if not prefix:
        return decls
    return tuple(f"--{prefix}-{d.removeprefix('--')}" for d in decls if d.startswith("--"))


def _annotation(model: Any, name: str, info: Any, flag: Flag, decls: tuple[str, ...],
                panel: str | None, layered: bool) -> Any:  # fmt: skip
    """``Annotated[type, typer.Option(...)]`` for one field: a tuple or list of values is a
    repeatable option; ``ge``/``le`` are typer's ``min``/``max`` (checked as it parses); a
    path is parsed by ``path_value``."""
    kind = flag.takes or info.annotation
    if typing.get_origin(kind) in (tuple, list):
        kind = list[typing.get_args(kind)[0]]  # type: ignore[index]
    elif not _typer_can_parse(kind):
        raise TypeError(
            f"{model.__name__}.{name}: typer cannot parse {kind!r}; mark the field NOT_A_FLAG "
            "or say what the option takes (Flag(takes=...))"
        )
    if layered and typing.get_origin(kind) is typing.Literal:
        kind = str  # the model names the choices in its error, as for a file's value
    bounds = {
        key: getattr(m, attr)
        for m in info.metadata  # pydantic's annotated_types.Ge / Le
        for key, attr in (("min", "ge"), ("max", "le"))
        if hasattr(m, attr)
    }
    extra = {"parser": path_value} if kind is Path else {}
    # A layered group's bounds are the model's to check (typer's would be checked before the
    # other layers are merged), so its help says them.
    checked = {} if layered else bounds
    option = typer.Option(*decls, help=_help(info, bounds if layered else {}),
                          rich_help_panel=panel, **checked, **extra)  # fmt: skip
    return Annotated[kind | None, option]


def _help(info: Any, bounds: dict[str, Any]) -> str | None:
    """The field's description, with its range (``bounds``: min, max) and its default quoted
    when it is a plain value (the option's own default is None: not given)."""
    notes = []
    if "min" in bounds or "max" in bounds:
        low, high = bounds.get("min"), bounds.get("max")
        notes.append(
            f"{quoted(low)} to {quoted(high)}" if low is not None and high is not None
            else f"at least {quoted(low)}" if low is not None else f"at most {quoted(high)}"
        )  # fmt: skip
    plain = info.default_factory is None and not isinstance(info.default, tuple | list)
    if plain and info.default is not None:
        notes.append(f"default: {quoted(info.default)}")
    if not notes or not info.description:
        return info.description
    return f"{info.description.removesuffix('.')} ({'; '.join(notes)})."


def quoted(value: Any) -> str:
    """A default as help text quotes it (``true``, ``0.2``, ``2e-5``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:g}")
    return str(value)


def field_default(model: Any, field: str) -> str:
    """The default of a settings model's field as help text quotes it, from its one
    definition."""
    return quoted(model.model_fields[field].default)


def path_value(value: str | Path) -> Path:
    """The parser of every path option: an empty value is refused, since ``Path("")`` is
    ``.`` and would put a run's files into the current folder."""
    if isinstance(value, Path):
        return value
    if not value.strip():
        raise typer.BadParameter("is empty; give a path")
    return Path(value)


def _typer_can_parse(kind: Any) -> bool:
    """A plain value (or Optional of one), as typer parses options."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return all(_typer_can_parse(arg) for arg in typing.get_args(kind))
    plain = (str, int, float, bool, Path, type(None))
    return kind in plain or typing.get_origin(kind) is typing.Literal


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


def with_option_groups(func: F, beneath: Beneath | None = None) -> F:
    """``func`` as typer should see it: each parameter typed by an ``OptionGroup`` replaced
    by the group's options; at call time the group object takes their values. ``beneath``
    fills the options not given from the layers beneath them (``cli.run_config``) first:
    it takes each group's option values and the group, by parameter name, and the context
    (a hidden parameter typer fills), which tells an option given from a default."""
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
    if beneath is not None:
        parameters.append(inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY,
                                            annotation=typer.Context, default=None))  # fmt: skip
    names = [param.name for param in parameters]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TypeError(f"{func.__qualname__}: option {twice[0]!r} is declared twice")

    @functools.wraps(func)
    def wrapper(**values: Any) -> Any:
        options = {name: {field: values.pop(field) for field in fields}
                   for name, (_, fields) in groups.items()}  # fmt: skip
        context = values.pop(CONTEXT, None)
        if beneath is not None:
            beneath(options, {name: group for name, (group, _) in groups.items()}, context)
        for name, (group, _) in groups.items():
            values[name] = group.make(options[name])
        return func(**values)

    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=hints.get("return", inspect.Signature.empty)
    )
    wrapper.__annotations__ = {param.name: param.annotation for param in parameters}
    if "return" in hints:
        wrapper.__annotations__["return"] = hints["return"]
    return typing.cast(F, wrapper)
