"""The small error helpers every layer shares."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from matrix_align.errors import MatrixAlignError, build_checked


class Settings(BaseModel):
    steps: int = Field(3, ge=1)
    name: str = "x"


def test_build_checked_leaves_out_values_not_given() -> None:
    assert build_checked(Settings, {"steps": None, "name": "y"}, "settings") == Settings(name="y")


def test_build_checked_turns_validation_errors_into_one_error() -> None:
    with pytest.raises(MatrixAlignError) as caught:
        build_checked(Settings, {"steps": 0, "name": 5}, "demo settings", hint="see --help")
    assert caught.value.message == (
        "Invalid demo settings: steps: Input should be greater than or equal to 1; "
        "name: Input should be a valid string"
    )
    assert caught.value.hint == "see --help"


def test_build_checked_lets_other_errors_through() -> None:
    def make(**values: object) -> None:
        raise ValueError("a bug, not a user mistake")

    with pytest.raises(ValueError, match="a bug"):
        build_checked(make, {}, "settings")
