"""Prompt templates (Jinja2 files beside this module), rendered with ``render(name, **values)``."""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("matrix_align.simulation", "prompts"),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        keep_trailing_newline=True,
        autoescape=False,  # plain-text prompts, never HTML
    )


def render(name: str, **values: object) -> str:
    return _environment().get_template(f"{name}.j2").render(**values)
