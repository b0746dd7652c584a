"""The judges' prompt templates and fixed texts, as files beside this module: our rubrics
and pairwise prompt, and the MT-Bench and StrongREJECT judge prompts shipped with attribution
(see NOTICE.md). ``render(name, **values)`` renders ``name.j2``; ``read_text`` reads a file.
The baselines' prompts are in ``systems/prompts``.
"""

from __future__ import annotations

from matrix_align.prompt_files import PromptFolder

_FOLDER = PromptFolder("matrix_align.evaluate")
render = _FOLDER.render
read_text = _FOLDER.read_text
load_yaml = _FOLDER.load_yaml
