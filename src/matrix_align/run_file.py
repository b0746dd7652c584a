"""A run's ``--config`` file: a YAML mapping of sections, each the settings of one part of
the run, ``backend:``, ``judges:``, ``simulation:``, ``systems:`` and ``data:``, and the
``--set SECTION.KEY=VALUE`` assignments that go with it (docs/simulation.md, "A run in one file").

A file with no sections, its simulation settings at the top (the older form, which every
file written before the sections has), is a simulation section; a profile's name
(``--config paper``) is that profile's simulation section. This module splits a file and the
assignments into sections; each section is checked by its own settings model where it is
used (``SimulationConfig.load``, ``cli.run_config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matrix_align.errors import MatrixAlignError
from matrix_align.io import read_yaml_mapping

SECTIONS = ("backend", "judges", "simulation", "systems", "data")
SET_EXAMPLE = "e.g. --set roles=3 or --set backend.parallel=8"


def read_sections(
    path: str | Path, profiles: Mapping[str, Mapping[str, Any]] = {}
) -> dict[str, Any]:  # noqa: B006 - read only
    """The sections of the file at ``path`` (a mapping each, ``judges`` a list), or of the
    profile ``path`` names (``profiles``) when no such file exists; refused, naming the file
    and the fix: a section that is not one of ``SECTIONS`` beside others, top-level settings
    mixed with sections, a section of the wrong shape."""
    profile = (profiles or {}).get(str(path))
    if profile is not None and not Path(path).exists():
        return {"simulation": dict(profile)}
    data = read_yaml_mapping(path)
    keys = [str(key) for key in data]
    sections = [key for key in keys if key in SECTIONS]
    if not sections:
        return {"simulation": data} if data else {}
    others = [key for key in keys if key not in SECTIONS]
    if others:
        raise MatrixAlignError(
            f"{path}: {', '.join(others)} is no section, beside the sections "
            f"{', '.join(sections)}.",
            hint=f"the sections are {', '.join(SECTIONS)}; a simulation setting goes under "
            "simulation: (only a file with no sections holds them at the top)",
        )
    return {str(key): _shaped(str(key), value, path) for key, value in data.items()}


def _shaped(section: str, value: Any, path: str | Path) -> Any:
    """A section's value: a mapping (empty when left blank), or for ``judges`` a list."""
    if value is None:
        return [] if section == "judges" else {}
    if section == "judges":
        if isinstance(value, str | dict):
            value = [value]  # one judge
        if isinstance(value, list):
            return value
        shape = "a list of judges, each a SPEC text or a mapping of backend settings"
    elif isinstance(value, dict):
        return value
    else:
        shape = "a mapping of KEY: VALUE"
    raise MatrixAlignError(
        f"{section}: in {path} is not {shape}.", hint='see docs/simulation.md, "A run in one file"'
    )


def split_sets(assignments: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``--set`` assignments (``io.parse_assignments``) by section: ``backend.parallel`` in
    ``backend``; a key with no section is a simulation setting (``--set roles=3``), as
    ``--set`` has always meant. ``judges`` is a list, set with ``--judge``, not here."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in assignments.items():
        section, dot, name = key.partition(".")
        if not dot:
            section, name = "simulation", key
        if section not in SECTIONS or section == "judges" or not name:
            raise MatrixAlignError(
                f"--set {key}: {section!r} is not a section --set can set.",
                hint=f"SECTION.KEY=VALUE with SECTION one of backend, simulation, systems, "
                f"data (judges: --judge SPEC), or a simulation setting alone; {SET_EXAMPLE}",
            )
        out.setdefault(section, {})[name] = value
    return out
