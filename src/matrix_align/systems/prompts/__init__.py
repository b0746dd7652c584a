"""The baselines' prompt templates and fixed texts (principles, system prompts, requests),
as files beside this module, all written for matrix-align. ``render(name, **values)`` renders
``name.j2``; ``load_yaml`` reads the principle lists. A third-party text added here is named,
with its origin and licence, in a NOTICE.md beside it (as in ``evaluate/prompts``).
"""

from __future__ import annotations

from matrix_align.prompt_files import PromptFolder

_FOLDER = PromptFolder("matrix_align.systems")
render = _FOLDER.render
read_text = _FOLDER.read_text
load_yaml = _FOLDER.load_yaml
