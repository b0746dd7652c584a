"""Building backends by name: a missing optional dependency names the extra to install."""

from __future__ import annotations

import importlib.util

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm.spec import BackendSpec


def test_transformers_backend_without_torch_names_the_train_extra(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(MatrixAlignError, match="needs torch") as info:
        BackendSpec("transformers", model="some/model").build()
    assert "matrix-align[train]" in str(info.value.hint)
