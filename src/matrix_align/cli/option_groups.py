"""Option groups: several typer options declared once, as the fields of a dataclass, and
handed to a command as one object.

A group is a ``@dataclass(kw_only=True)`` subclass of ``OptionGroup`` whose fields are
annotated with typer's ``Annotated[type, typer.Option(...)]`` and have their defaults. A
command takes the group as one parameter (``backend: BackendOptions``) and is decorated with
``@with_option_groups``: typer then sees the group's fields as the command's own options,
in the place of that parameter, and the command receives the group object built from them.

typer reads a command's parameters from ``inspect.signature(func, eval_str=True)`` (which
returns ``__signature__`` when a function has one) and its types from
``typing.get_type_hints(func)`` (which reads ``__annotations__``), and calls it with every
parameter by keyword; the wrapper sets the first two and rebuilds the groups in the third.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

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


def _is_group(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, OptionGroup)


def with_option_groups(func: F) -> F:
    """``func`` as typer should see it: each parameter typed by an ``OptionGroup`` replaced
    by the group's options; at call time the group object takes their values."""
    hints = typing.get_type_hints(func, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[OptionGroup], list[str]]] = {}
    for param in inspect.signature(func).parameters.values():
        annotation = hints.get(param.name, param.annotation)
        if _is_group(annotation):
            fields = annotation.parameters()
            groups[param.name] = (annotation, [field.name for field in fields])
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
            values[name] = group(**{field: values.pop(field) for field in fields})
        return func(**values)

    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=hints.get("return", inspect.Signature.empty)
    )
    wrapper.__annotations__ = {param.name: param.annotation for param in parameters}
    if "return" in hints:
        wrapper.__annotations__["return"] = hints["return"]
    return typing.cast(F, wrapper)
