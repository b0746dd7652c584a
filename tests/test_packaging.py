"""Install contracts: extras declare tested ranges; only the test set-up pins exact versions.

A user who installed a CUDA torch (or any newer transformers) must be able to add
`matrix-align[train]` without pip replacing it, while scripts/test.sh installs exactly the
versions the suite was run on (constraints/test.txt), e.g. the CPU torch build.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from matrix_align.llm import model_files

_REPO = Path(__file__).resolve().parents[1]
_PYPROJECT = tomllib.loads((_REPO / "pyproject.toml").read_text(encoding="utf-8"))
_EXTRAS: dict[str, list[str]] = _PYPROJECT["project"]["optional-dependencies"]
# Model chunks are data checked by sha256, so they alone stay pinned in the package.
_CHUNKS = {c.distribution for m in model_files.BUNDLED_MODELS.values() for c in m.chunks}


def _constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (_REPO / "constraints" / "test.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints/test.txt pins exactly: {line}"
            pins[req.name] = Version(spec.version)
    return pins


def _code_requirements() -> list[tuple[str, Requirement]]:
    """Every requirement of every extra that is a third-party package and not a model chunk."""
    found = []
    for extra, reqs in _EXTRAS.items():
        for text in reqs:
            req = Requirement(text)
            if req.name != "matrix-align" and text not in _CHUNKS:
                found.append((extra, req))
    return found


def test_torch_has_a_minimum_only() -> None:
    """No upper bound and no pin: pip keeps whichever torch build the user installed first."""
    torches = [req for _, req in _code_requirements() if req.name == "torch"]
    assert torches, "the train extra needs torch"
    for req in torches:
        assert {s.operator for s in req.specifier} == {">="}, str(req)


@pytest.mark.parametrize(("extra", "req"), _code_requirements(), ids=str)
def test_extras_declare_ranges_whose_minimum_is_the_tested_version(
    extra: str, req: Requirement
) -> None:
    operators = {s.operator for s in req.specifier}
    assert "==" not in operators and "===" not in operators, f"[{extra}] pins {req}"
    if req.name in {"pytest", "pytest-asyncio", "ruff"}:
        return  # test tools: the suite only needs a minimum, not the one it was run with
    minimums = [Version(s.version) for s in req.specifier if s.operator == ">="]
    assert minimums, f"[{extra}] {req} has no minimum"
    pins = _constraints()
    assert req.name in pins, f"constraints/test.txt does not pin {req.name}"
    # The tested version satisfies the range and is its minimum (the range never claims an
    # older release works than the one tested).
    assert pins[req.name] in req.specifier
    assert minimums[0].release == pins[req.name].release[: len(minimums[0].release)]


def test_every_constraint_belongs_to_an_extra() -> None:
    named = {req.name for _, req in _code_requirements()}
    assert set(_constraints()) <= named


def test_the_test_script_installs_with_the_constraints() -> None:
    script = (_REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-c constraints/test\.txt -e '\.\[", script)


def test_the_browser_test_tool_is_installed_by_the_test_setup_not_a_user_extra() -> None:
    """Playwright (167 MB) serves only tests/view: it is in `dev`, which scripts/test.sh (and
    so CI and the README's test command) installs, and in no extra a user installs for a
    feature."""
    holders = {extra for extra, req in _code_requirements() if req.name == "playwright"}
    assert holders == {"dev"}
    script = (_REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    installed = re.search(r"-e '\.\[([^\]]+)\]'", script)
    assert installed and "dev" in installed.group(1).split(",")


def test_metadata_has_licence_classifiers_and_one_version() -> None:
    project = _PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    licence = (_REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert f"Programming Language :: Python :: {project['requires-python'][2:]}" in classifiers
    # The version is written once, in matrix_align.__version__ (what --version prints).
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = _PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "matrix_align.__version__"}


def test_py_typed_is_shipped() -> None:
    import matrix_align

    assert (Path(matrix_align.__file__).parent / "py.typed").is_file()
    package_data = _PYPROJECT["tool"]["setuptools"]["package-data"]["matrix_align"]
    assert "py.typed" in package_data


def test_no_extra_is_empty() -> None:
    """An empty extra installs nothing and promises a feature that is not there."""
    assert all(_EXTRAS.values()), [name for name, reqs in _EXTRAS.items() if not reqs]


def test_third_party_texts_are_package_data_with_their_notices() -> None:
    import matrix_align

    root = Path(matrix_align.__file__).parent
    patterns = _PYPROJECT["tool"]["setuptools"]["package-data"]["matrix_align"]
    for path, notice in (
        (root / "refusal_prefixes_gcg.txt", root / "NOTICE.md"),
        (root / "evaluate/prompts/strongreject_rubric.json", root / "evaluate/prompts/NOTICE.md"),
        (root / "train/accelerate/fsdp.yaml", None),
    ):
        assert path.is_file()
        assert any(path.match(p) for p in patterns), path.name
        if notice is not None:
            assert path.name in notice.read_text(encoding="utf-8")
            assert "MIT License" in notice.read_text(encoding="utf-8")
