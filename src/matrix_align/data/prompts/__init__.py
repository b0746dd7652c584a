"""The prompts of the data-generation methods that are not answerers of ``systems`` (RLcd's
contrastive system prompts, RLAIF's labelling request), as files beside this module, all
written for matrix-align. ``render(name, **values)`` renders ``name.j2``.
"""

from __future__ import annotations

from matrix_align.prompt_files import PromptFolder

_FOLDER = PromptFolder("matrix_align.data")
render = _FOLDER.render
