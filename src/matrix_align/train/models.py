"""Chat templates for training: a bundled one by name, or the user's file.

Where a model comes from and loading it (for training and for the ``transformers`` backend
alike) is ``llm/hf_models.py``; the layout of a training output folder is
``llm/train_output.py``.
"""

from __future__ import annotations

from pathlib import Path

from matrix_align.errors import MatrixAlignError

BUNDLED_TEMPLATES = {"vicuna": "vicuna_v1.1.j2", "vicuna_v1.1": "vicuna_v1.1.j2"}


def read_chat_template(spec: str) -> str:
    """A chat template by bundled name or from a .jinja/.j2 file."""
    if spec in BUNDLED_TEMPLATES:
        return (Path(__file__).parent / "templates" / BUNDLED_TEMPLATES[spec]).read_text("utf-8")
    path = Path(spec).expanduser()
    if path.suffix in (".jinja", ".j2") and path.is_file():
        return path.read_text(encoding="utf-8")
    raise MatrixAlignError(
        f"Unknown chat template {spec!r}.",
        hint=f"use a .jinja/.j2 file or one of: {', '.join(BUNDLED_TEMPLATES)}",
    )
