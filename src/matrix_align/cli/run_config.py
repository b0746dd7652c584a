"""The run's ``--config`` file and ``--set`` beneath a command's options (``with_run_config``,
in every command that runs the simulation).

Each section of the file (``run_file``), then ``--set SECTION.KEY=VALUE``, fills the options
not given on the command line of the command's option group of the same name: its
``backend``, ``judges``, ``systems`` and ``data`` parameters. Every section is checked by
its own settings model before the command starts, so before any model is loaded:

- ``backend:`` the settings of ``BackendSpec`` (``llm.spec_text.spec_settings``);
- ``judges:`` a list of judges, each a ``--judge`` SPEC text or a mapping of backend
  settings; judges named on the command line replace the whole list;
- ``systems:`` the systems' knobs, the fields of the ``systems`` group's model
  (``SystemOptions``);
- ``data:`` the command's own data options (``--limit``, ``--shuffle``, ...), each read as
  its option reads the text typed after it.

``simulation:`` is read with the settings that have no option by ``SimulationOptions.config``
(``SimulationConfig.load``). A section the command has no use for (``judges:`` in
``generate``) is named in a note and left, so that one file serves every command of a run;
an unknown section or key is an error, and so is ``--set`` of a section the command does not
take (docs/simulation.md, "A run in one file").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from matrix_align.cli.option_groups import with_option_groups
from matrix_align.errors import MatrixAlignError

F = TypeVar("F", bound=Callable[..., Any])
FILLED = ("backend", "judges", "systems", "data")  # the simulation fills its own options
SETTABLE = ("backend", "simulation", "systems", "data")  # by --set (judges: by --judge)


def with_run_config(func: F) -> F:
    """``with_option_groups``, with the run's file and ``--set`` beneath the options."""
    return with_option_groups(func, beneath=fill)


def fill(options: dict[str, dict[str, Any]], groups: Mapping[str, Any], ctx: Any) -> None:
    """Fill the options not given (``options``: each group's values, by parameter name) from
    the file named by ``--config`` and from ``--set``, both among the simulation's options
    (``ctx``: typer's context of the command, None without a command line)."""
    from matrix_align.io import parse_assignments
    from matrix_align.run_file import SET_EXAMPLE, read_sections, split_sets
    from matrix_align.simulation.config import PROFILES

    layers = options.get("simulation", {})
    path, items = layers.get("config_file"), layers.get("set_values") or []
    sections = read_sections(path, PROFILES) if path is not None else {}
    sets = split_sets(parse_assignments(items, example=SET_EXAMPLE))
    command = ctx.info_name if ctx is not None and ctx.info_name else "this command"
    for name in sets:
        if name not in options:
            raise MatrixAlignError(
                f"--set {name}.KEY: {command} has no {name} settings.",
                hint=f"drop it; {command} takes " + ", ".join(s for s in options if s in SETTABLE),
            )
    unused = [name for name in sections if name not in options]
    if unused:
        shown = ", ".join(f"{name}:" for name in unused)
        typer.echo(f"note: {path}: {command} leaves {shown} (for other commands)", err=True)
    for name in FILLED:
        if name not in options:
            continue
        read = Reader(ctx, command, set(options[name]), getattr(groups[name], "model", None))
        layer: dict[str, Any] = {}
        if name in sections:
            layer.update(read(name, sections[name], f"in the {name}: section of {path}"))
        if name in sets:
            layer.update(read(name, sets[name], f"in --set {name}.KEY"))
        given = _given(options[name], groups[name], ctx)
        if name == "judges" and given - {"judge_max_tokens"}:
            continue  # judges named on the command line replace the file's list
        options[name].update({field: v for field, v in layer.items() if field not in given})


@dataclass(frozen=True)
class Reader:
    """Reads one layer of a section into its group's fields, checked by the section's
    settings model: ``ctx``, the command's context (its options read ``data:``), ``command``
    its name, ``fields`` its group's, ``model`` the settings model its group is derived from
    (``option_groups.group``; None for a group declared by hand)."""

    ctx: Any
    command: str
    fields: set[str]
    model: Any = None

    def __call__(self, section: str, values: Any, where: str) -> dict[str, Any]:
        return getattr(self, section)(values, where)

    def backend(self, values: Mapping[Any, Any], where: str) -> dict[str, Any]:
        from matrix_align.llm.spec_text import spec_settings

        return spec_settings(values, where)

    def judges(self, items: list[Any], where: str) -> dict[str, Any]:
        """``{"judge": [BackendSpec...]}``, each item a SPEC text or a mapping of settings."""
        from matrix_align.llm.spec_text import checked_spec, parse_spec, spec_settings

        specs = []
        for number, item in enumerate(items, start=1):
            at = f"judge {number} {where}"
            if isinstance(item, str):
                specs.append(parse_spec(item, option=at))
            elif isinstance(item, dict):
                specs.append(checked_spec(spec_settings(item, f"in {at}"), f"in {at}"))
            else:
                raise MatrixAlignError(
                    f"Not a judge: {item!r} ({at}).",
                    hint="a SPEC text, BACKEND[:MODEL][,KEY=VALUE...], or a mapping of backend "
                    "settings (backend: openai, model: gpt-4o, ...)",
                )
        return {"judge": specs}

    def systems(self, values: Mapping[Any, Any], where: str) -> dict[str, Any]:
        """The systems' knobs, by field: a key is the field's name or its option's without
        the dashes, with dashes or underscores (``best-of-n``, ``best_of_n``)."""
        from matrix_align.errors import build_checked
        from matrix_align.flags import flag_of

        model = self.model
        names = {
            typed: field
            for field, info in model.model_fields.items()
            if field in self.fields  # an option of the group
            for typed in (field.replace("_", "-"), flag_of(info.metadata).name(field))
        }
        known = list(dict.fromkeys(names.values()))
        fields = {
            _look_up(names, key, f"system setting {where}", known): value
            for key, value in values.items()
        }
        build_checked(model, fields, f"system settings {where}")
        return fields

    def data(self, values: Mapping[Any, Any], where: str) -> dict[str, Any]:
        """The command's data options, by field: a key is an option's name without its
        dashes (``input``) or its field's (``input_file``); each value is read by the option
        itself, as the text typed after it would be (a list for a repeatable option)."""
        options = self._options()
        out: dict[str, Any] = {}
        what = f"data setting of {self.command} {where}"
        for key, value in values.items():
            option = _look_up(options, key, what, sorted(options))
            out[str(option.name)] = self._read(option, value, f"{key} {where}")
        return out

    def _options(self) -> dict[str, Any]:
        """The command's options of the group's fields, by each name a key may use."""
        options: dict[str, Any] = {}
        for param in self.ctx.command.params if self.ctx is not None else []:
            if param.name in self.fields and getattr(param, "opts", None):
                long = next((o for o in param.opts if o.startswith("--")), f"--{param.name}")
                options[long.removeprefix("--")] = param
                options[str(param.name).replace("_", "-")] = param
        return options

    def _read(self, option: Any, value: Any, what: str) -> Any:
        """``value`` read by ``option`` as the command line reads it: each value as text."""
        several = isinstance(value, list | tuple)
        if option.multiple:
            raw: Any = [_text(v) for v in (value if several else [value])]
        elif several:
            raise MatrixAlignError(f"{what}: takes one value, not a list.")
        else:
            raw = _text(value)
        try:
            read = option.process_value(self.ctx, raw)
        except typer.BadParameter as exc:
            raise MatrixAlignError(f"Invalid value for {what}: {exc.message}") from None
        return list(read) if option.multiple else read


def _text(value: Any) -> Any:
    """A value as the command line gives it: text (a flag's true or false as is)."""
    return value if isinstance(value, bool) else str(value)


def _given(values: dict[str, Any], group: Any, ctx: Any) -> set[str]:
    """The options of a group given on the command line (the context's record of where each
    value came from); without a command line, those whose value is not the default."""
    if ctx is not None:
        lower = ("DEFAULT", "DEFAULT_MAP")
        sources = {name: ctx.get_parameter_source(name) for name in values}
        return {name for name, source in sources.items() if source and source.name not in lower}
    defaults = {param.name: param.default for param in group.parameters()}
    return {name for name, value in values.items() if value != defaults.get(name)}


def _look_up(table: Mapping[str, Any], key: Any, what: str, known: list[str]) -> Any:
    """What a file's or --set's ``key`` names in ``table`` (keys with dashes, matched
    whatever the case and with underscores for dashes), or one error listing ``known``."""
    found = table.get(str(key).strip().lower().replace("_", "-"))
    if found is None:
        raise MatrixAlignError(
            f"Not a {what}: {key!r}.", hint=f"KEY: VALUE with KEY one of: {', '.join(known)}"
        )
    return found
