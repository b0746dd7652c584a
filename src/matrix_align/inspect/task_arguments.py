"""The task arguments (``-T``), checked when a task is built.

inspect reads each ``-T`` value as YAML, so ``-T judged=maybe`` arrives as the string
``"maybe"`` and ``-T refusal_detector=bogus`` as ``"bogus"``; used as given, the first would
count as true and the second would score with the default detector. Each is checked
instead, and a wrong one stops the run before any answer with a ``PrerequisiteError``:
inspect prints its message without a traceback and ``inspect eval`` exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import model_roles
from inspect_ai.model._model import active_model

from matrix_align.inspect.scorers import GRADER


def choice(name: str, value: Any, choices: Iterable[str]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise PrerequisiteError(
            f"The task argument {name}={value!r} is not one of {', '.join(choices)}.\n"
            f"  hint: -T {name}={choices[0]}"
        )
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):  # YAML's true/false/yes/no arrive as booleans already
        raise PrerequisiteError(
            f"The task argument {name}={value!r} is not a boolean.\n"
            f"  hint: -T {name}=true or -T {name}=false"
        )
    return value


def require_grader_role() -> None:
    """A judged task needs a model bound to the role ``grader``. Checked here when the task
    is built inside an evaluation (``inspect eval``, or ``eval()`` given the task's name),
    where the roles are already known (inspect sets the active model and the roles before
    it builds tasks), so the command fails instead of logging an error and exiting 0. A
    task built in Python before ``eval()`` cannot know them: its setup solver checks."""
    if active_model() is not None and GRADER not in model_roles():
        raise PrerequisiteError(
            "The task is judged: its model-graded scorers need a judge bound to the model "
            f"role '{GRADER}'.\n"
            f"  hint: add --model-role {GRADER}=PROVIDER/MODEL (a model other than the one "
            "under test), or -T judged=false to score with the refusal detector only"
        )
