"""Prompt templates and fixed texts kept as files in a package folder (``evaluate/prompts``,
``systems/prompts``): ``render(name, **values)`` renders ``name.j2``; ``read_text`` and
``load_yaml`` read the fixed lists and texts beside them.

Why files: a reader (or a reviewer of an evaluation) can read every principle, rubric and
instruction without reading code, and a change to one shows up as a diff of that file.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2
import yaml


class PromptFolder:
    """The ``folder`` beside ``package``'s modules (``PromptFolder("matrix_align.systems")``
    is ``systems/prompts``)."""

    def __init__(self, package: str, folder: str = "prompts") -> None:
        self.package = package
        self.folder = folder

    @cache  # noqa: B019 - one instance per package, alive for the whole process
    def _environment(self) -> jinja2.Environment:
        return jinja2.Environment(
            loader=jinja2.PackageLoader(self.package, self.folder),
            undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
            keep_trailing_newline=False,
            autoescape=False,  # plain-text prompts, never HTML
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, **values: object) -> str:
        return self._environment().get_template(f"{name}.j2").render(**values).strip()

    @cache  # noqa: B019
    def read_text(self, name: str) -> str:
        return resources.files(self.package).joinpath(self.folder, name).read_text("utf-8")

    @cache  # noqa: B019
    def load_yaml(self, name: str) -> Any:
        return yaml.safe_load(self.read_text(name))
