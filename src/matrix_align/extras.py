"""Optional dependencies: the extra that installs them, and one clear error when one is
missing, raised before any work instead of an ImportError from deep inside a library."""

from __future__ import annotations

import importlib.util

from matrix_align.errors import MatrixAlignError

TRAIN_MODULES = ("torch", "transformers", "trl", "peft")
TRAIN_HINT = (
    "pip install 'matrix-align[train]' (on a GPU machine install the CUDA build of torch first)"
)

SERVE_MODULES = ("starlette", "uvicorn")
SERVE_HINT = "pip install 'matrix-align[serve]'"
INSPECT_MODULES = ("inspect_ai",)
INSPECT_HINT = "pip install 'matrix-align[inspect]'"


def require_modules(modules: tuple[str, ...], purpose: str, hint: str) -> None:
    """Raise one ``MatrixAlignError`` naming every module of ``modules`` not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MatrixAlignError(
            f"{purpose} needs {', '.join(missing)}, which {verb} not installed.", hint=hint
        )
