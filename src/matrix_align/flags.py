"""How a setting of a library model is named on the command line, declared beside its field.

A settings model (``llm.spec.BackendSpec``, ``simulation.config.SimulationConfig``) is the one
list of its settings: each field has its type, default, bounds (``Field(ge=..., le=...)``) and
help (``Field(description=...)``). The command line derives its options from those fields
(``cli.option_groups.group``), so a new setting is one field in one file. What the field
cannot say is said here, in the field's ``Annotated`` metadata, where pydantic keeps it for
the CLI to read:

- ``Flag("--request-timeout")``: the option's names, when they are not ``--field-name``
  (a name users already type, a short alias such as ``-b``, a ``--on/--off`` pair);
- ``Flag("--prompts", takes=Path)``: the option takes another type than the field holds
  (a folder, which the field's validator reads into its mapping);
- ``NOT_A_FLAG``: a field that is no option (an object built at run time, or a setting that a
  command declares with its own options, or one left to files and ``--set``).

This module imports nothing: the library layers declare flags without depending on the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, init=False)
class Flag:
    """The option names of a field, the long one first, then its aliases (``--backend``,
    ``-b``); ``takes``: the type the option parses, when not the field's; ``on_cli=False``:
    the field is no option."""

    names: tuple[str, ...]
    takes: Any
    on_cli: bool

    def __init__(self, *names: str, takes: Any = None, on_cli: bool = True) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "takes", takes)
        object.__setattr__(self, "on_cli", on_cli)

    def name(self, field: str) -> str:
        """The option's long name as a user types it in ``--set`` or a file, without dashes:
        ``roles`` for ``--roles``, ``adaptive-plan`` for ``--adaptive-plan/--fixed-plan``,
        and the field's name with dashes (``memory-budget``) when the flag names none."""
        if not self.names:
            return field.replace("_", "-")
        return self.names[0].split("/")[0].removeprefix("--")


NOT_A_FLAG = Flag(on_cli=False)


def flag_of(metadata: Iterable[Any]) -> Flag:
    """The ``Flag`` among a field's metadata, or the plain one (``--field-name``)."""
    return next((m for m in metadata if isinstance(m, Flag)), Flag())
