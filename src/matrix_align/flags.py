"""How a setting of a library model is named on the command line, declared beside its field.

A settings model (``llm.spec.BackendSpec``) is the one list of its settings: each field has its
type, default, bounds (``Field(ge=..., le=...)``) and help (``Field(description=...)``). The
command line derives its options from those fields (``cli.option_groups.group``), so a new
setting is one field in one file. What the field cannot say is said here, in the field's
``Annotated`` metadata, where pydantic keeps it for the CLI to read:

- ``Flag("--request-timeout")``: the option's names, when they are not ``--field-name``
  (a name users already type, a short alias such as ``-b``);
- ``NOT_A_FLAG``: a field that is no option (an object built at run time, or a setting that a
  command declares with its own options).

This module imports nothing: the library layers declare flags without depending on the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, init=False)
class Flag:
    """The option names of a field, the long one first, then its aliases (``--backend``,
    ``-b``); ``on_cli=False``: the field is no option."""

    names: tuple[str, ...]
    on_cli: bool

    def __init__(self, *names: str, on_cli: bool = True) -> None:
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "on_cli", on_cli)


NOT_A_FLAG = Flag(on_cli=False)
