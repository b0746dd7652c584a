"""Provenance: one record (package, libraries, command, templates, data, model) in run.json,
traces, exports and model cards; sample ids follow the prompt templates, and folders made
with other templates are refused with one clear error."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

from matrix_align import provenance
from matrix_align.data.generate import (
    GenerateOptions,
    SourceSpec,
    build_plan,
    check_output,
    generate,
)
from matrix_align.errors import MatrixAlignError
from matrix_align.llm.model_files import QWEN_0_5B
from matrix_align.llm.scripted import ScriptedModel
from matrix_align.llm.wrappers import RetryingModel
from matrix_align.simulation.config import SimulationConfig

KEY = "scripted:default"
CONFIG = SimulationConfig(n_roles=1, n_steps=1)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_the_record_names_versions_command_and_templates(monkeypatch) -> None:
    seen: list[str] = []

    def version(name: str) -> str:
        seen.append(name)
        if name in ("openai", "pydantic"):
            return "9.9"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(provenance.metadata, "version", version)
    provenance.library_versions.cache_clear()
    try:
        argv = ["/usr/bin/matrix-align", "generate", "--base-url", "http://u:secret@h/v1"]
        data = provenance.provenance_record(argv=argv, datasets={"a": {"revision": "r"}})
    finally:
        provenance.library_versions.cache_clear()
    assert data["matrix_align"] and data["python"]
    assert data["libraries"] == {"openai": "9.9", "pydantic": "9.9"}  # not installed: left out
    assert {"torch", "transformers", "xllamacpp"} <= set(seen)  # asked of the metadata only
    assert data["command"] == "matrix-align generate --base-url http://***@h/v1"
    assert "secret" not in json.dumps(data)
    assert data["prompt_templates_sha256"] == provenance.prompt_templates_sha256()
    assert data["datasets"] == {"a": {"revision": "r"}}


def test_library_versions_never_import_the_libraries() -> None:
    provenance.library_versions.cache_clear()
    before = set(sys.modules)
    provenance.library_versions()
    assert not {"torch", "transformers", "trl", "peft", "datasets"} & (set(sys.modules) - before)


def test_the_template_hash_covers_every_template_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    shutil.copytree(provenance.PROMPTS_DIR, folder)
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    assert provenance.templates_sha256(folder) == digest.hexdigest()
    assert provenance.templates_sha256(folder) == provenance.prompt_templates_sha256()
    (folder / "action.j2").write_text((folder / "action.j2").read_text() + " ")
    assert provenance.templates_sha256(folder) != provenance.prompt_templates_sha256()


def test_model_identity_per_backend() -> None:
    embedded = SimpleNamespace(name="embedded:qwen", bundled=QWEN_0_5B, model_path=None)
    identity = provenance.model_identity(RetryingModel(embedded))  # seen through wrappers
    assert identity["sha256"] == QWEN_0_5B.sha256 and identity["file"] == QWEN_0_5B.filename
    own = SimpleNamespace(name="embedded:mine", bundled=None, model_path="/m/mine.gguf")
    assert provenance.model_identity(own)["file"] == "mine.gguf"

    from matrix_align.llm.openai_compat import OpenAICompatModel

    remote = OpenAICompatModel(base_url="http://127.0.0.1:9/v1", model="gpt-4o")
    assert provenance.model_identity(remote)["reported"] is None  # nothing answered yet
    assert remote._reported(SimpleNamespace(model="gpt-4o-2024-08-06")) == "gpt-4o-2024-08-06"
    identity = provenance.model_identity(remote)
    assert identity == {"name": "openai:gpt-4o", "backend": "openai", "requested": "gpt-4o",
                        "reported": ["gpt-4o-2024-08-06"]}  # fmt: skip
    assert provenance.model_identity(ScriptedModel.demo()) == {"name": "scripted"}


def _plan():
    return build_plan([SourceSpec.parse("advbench:direct:2")], config=CONFIG, model_key=KEY)


def test_ids_follow_the_prompt_templates(monkeypatch) -> None:
    ids = [item.id for item in _plan().items]
    monkeypatch.setattr(provenance, "prompt_templates_sha256", lambda: "edited")
    assert not set(ids) & {item.id for item in _plan().items}


def test_generate_records_provenance_and_refuses_other_templates(tmp_path, monkeypatch) -> None:
    out = tmp_path / "gen"
    options = GenerateOptions(output=out, export=True)
    asyncio.run(generate(_plan(), ScriptedModel.demo(), CONFIG, options, model_info={"key": KEY}))
    run = json.loads((out / "run.json").read_text())
    assert run["prompt_templates_sha256"] == provenance.prompt_templates_sha256()
    record = run["provenance"]
    assert record["model"]["name"] == "scripted"
    assert record["datasets"]["advbench"]["revision"].startswith("sha256:")
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert json.loads(sample["trace"])["provenance"]["prompt_templates_sha256"]
    exported = json.loads((out / "exports" / "provenance.json").read_text())
    assert exported["generation"]["datasets"] == record["datasets"]
    assert exported["export"]["matrix_align"] and exported["rows"]

    check_output(out, config=CONFIG, model_key=KEY)  # same templates: resumes
    monkeypatch.setattr(provenance, "prompt_templates_sha256", lambda: "f" * 64)
    with pytest.raises(MatrixAlignError, match="other scene prompt templates"):
        check_output(out, config=CONFIG, model_key=KEY)


def test_a_folder_from_before_template_ids_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "samples.jsonl").write_text("")
    (out / "run.json").write_text(json.dumps({"model_key": KEY, "config": CONFIG.model_dump()}))
    with pytest.raises(MatrixAlignError, match="earlier matrix-align") as caught:
        check_output(out, config=CONFIG, model_key=KEY)
    assert "new --output" in (caught.value.hint or "")


def test_the_model_card_carries_the_provenance(tmp_path: Path) -> None:
    from matrix_align.data.export import PROVENANCE_FILE, find_export_provenance
    from matrix_align.train.card import _provenance_section

    export = tmp_path / "exports"
    (export / "jsonl").mkdir(parents=True)
    generation = provenance.provenance_record(ScriptedModel.demo(), argv=["matrix-align", "gen"])
    (export / PROVENANCE_FILE).write_text(json.dumps({"generation": generation}))
    data = find_export_provenance(export / "jsonl" / "prompt_completion.jsonl")
    assert data == {"generation": generation}
    assert find_export_provenance(tmp_path / "elsewhere.jsonl") is None
    record = provenance.provenance_record(argv=["matrix-align", "train"], base_model="b", data=data)
    text = _provenance_section(record)
    assert "## Provenance" in text and "`matrix-align train`" in text
    assert "data generated by `scripted`" in text and "`matrix-align gen`" in text
