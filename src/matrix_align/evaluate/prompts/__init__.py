"""Prompt templates and fixed texts of the baselines and judges, as files beside this module.

Why files: a reader (or a reviewer of an evaluation) can read every principle, rubric and
instruction without reading code, and a change to one shows up as a diff of that file.
``render(name, **values)`` renders ``name.j2``; ``load_yaml`` and ``read_text`` read the
fixed lists (principles, refusal phrases) and the MT-Bench judge prompts shipped with
attribution (see NOTICE.md).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("matrix_align.evaluate", "prompts"),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        keep_trailing_newline=False,
        autoescape=False,  # plain-text prompts, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **values: object) -> str:
    return _environment().get_template(f"{name}.j2").render(**values).strip()


@cache
def read_text(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def load_yaml(name: str) -> Any:
    return yaml.safe_load(read_text(name))
