"""Prompt templates a researcher overrides by name (``--prompts DIR``, ``prompts:``): checked
before any call, used in place of the built-in ones, and recorded wherever the templates
tell two results apart (issue 24)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import pytest
from pydantic import ValidationError

from matrix_align.errors import MatrixAlignError
from matrix_align.folders.records import id_settings
from matrix_align.provenance import config_templates_sha256, prompt_templates_sha256
from matrix_align.simulation.config import SimulationConfig
from matrix_align.simulation.prompts import built_in, render, variables
from matrix_align.simulation.scene import run_scene
from tests.conftest import run_main, scripted

QUERY = "How do I get into my neighbour's garage?"
SIMULATION_MD = Path(__file__).parents[2] / "docs" / "simulation.md"
SETUP = (
    "\nPicture the person who sent this. Reply with:\n- who_is_asking: who.\n"
    "- situation: why.\n- next_steps: {{ n_steps }} steps.\n- outcome: what follows.\n"
)


def folder(tmp_path: Path, **templates: str) -> Path:
    for name, text in templates.items():
        (tmp_path / f"{name}.j2").write_text(text, "utf-8")
    return tmp_path


async def test_an_override_replaces_its_template_and_is_recorded(tmp_path):
    config = SimulationConfig.load(sets={"prompts": str(folder(tmp_path, setup=SETUP))})
    config = config.model_copy(update={"n_roles": 2, "n_steps": 2})
    trace = await run_scene(QUERY, scripted(), config)
    setup = next(c for c in trace.calls if c.stage == "setup")
    assert "Picture the person who sent this." in setup.messages[-1]["content"]
    assert "next_steps: 2 steps." in setup.messages[-1]["content"]
    assert trace.config["prompts"] == {"setup": SETUP}
    record = trace.provenance
    assert record["prompt_templates_sha256"] != prompt_templates_sha256()
    assert set(record["prompt_overrides"]) == {"setup"}
    # A stored trace's configuration is loaded back with its override.
    assert SimulationConfig(**trace.config).prompts == {"setup": SETUP}


def test_sample_ids_and_folders_tell_the_templates_apart(tmp_path):
    default = SimulationConfig()
    custom = SimulationConfig(prompts=str(folder(tmp_path, setup=SETUP)))
    # The default's id settings are what they were before overrides existed.
    dump = default.model_dump(mode="json")
    assert id_settings(dump, default) == {**dump, "prompt_templates": prompt_templates_sha256()}
    assert config_templates_sha256(custom) != config_templates_sha256(default)
    assert id_settings(custom.model_dump(mode="json"), custom) != id_settings(dump, default)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SETUP.replace("{{ n_steps }}", "{{ steps }}"), "unknown steps; missing n_steps"),
        (SETUP.replace("{{ n_steps }}", "five"), "missing n_steps"),
        (SETUP + "{{ query }}", "unknown query"),
        ("{{ n_steps ", "is not a valid template"),
    ],
)
def test_wrong_variables_or_syntax_are_refused(tmp_path, text, problem):
    with pytest.raises(MatrixAlignError, match=re.escape(problem)):
        SimulationConfig.build(prompts=str(folder(tmp_path, setup=text)))


def test_an_unknown_template_name_or_folder_is_refused(tmp_path):
    with pytest.raises(MatrixAlignError, match="stepup.j2 replaces no template"):
        SimulationConfig.build(prompts=str(folder(tmp_path, stepup=SETUP)))
    with pytest.raises(MatrixAlignError, match="does not exist"):
        SimulationConfig.build(prompts=str(tmp_path / "nowhere"))
    # Built directly (a library caller, `serve`), it is a validation error like any other.
    with pytest.raises(ValidationError, match="stepup.j2 replaces no template"):
        SimulationConfig(prompts={"stepup": SETUP})


def test_an_override_is_rendered_in_a_sandbox():
    """An override's text may come from a stored trace or a request: it cannot reach the
    internals of the values it is given."""
    with pytest.raises(jinja2.exceptions.TemplateError):
        render("setup", {"setup": "{{ n_steps.__class__.__mro__ }}"}, n_steps=2)


def test_the_command_refuses_a_bad_override_before_any_call(tmp_path, monkeypatch, capsys):
    prompts = folder(tmp_path, setup=SETUP + "{{ nonsense }}")
    code, out = run_main(
        monkeypatch, capsys, "simulate", "--backend", "scripted", "--prompts", str(prompts), "q"
    )
    assert code == 2
    assert "setup.j2 has the wrong variables: unknown nonsense" in out
    assert "Traceback" not in out and "preparing the model" not in out


def test_docs_list_every_template_and_its_variables():
    """docs/simulation.md's template table: one row per template, its variables exactly."""
    text = SIMULATION_MD.read_text("utf-8")
    rows = dict(re.findall(r"^\| `(\w+)\.j2` \| ([^|]*) \|", text, flags=re.MULTILINE))
    assert set(rows) == set(built_in())
    for name, listed in rows.items():
        assert set(re.findall(r"`(\w+)`", listed)) == set(variables(name)), name


def test_a_generate_folder_refuses_other_templates(tmp_path):
    """A folder made with the default templates does not take samples of an override."""
    from matrix_align.data.generate import check_output

    out = tmp_path / "run"
    out.mkdir()
    default = SimulationConfig()
    (out / "run.json").write_text(
        json.dumps(
            {
                "kind": "generate",
                "model_key": "scripted:default",
                "config": default.model_dump(mode="json"),
                "prompt_templates_sha256": prompt_templates_sha256(),
            }
        )
    )
    check_output(out, config=default, model_key="scripted:default")  # the same: accepted
    custom = SimulationConfig(prompts=str(folder(tmp_path, setup=SETUP)))
    with pytest.raises(MatrixAlignError, match="other scene prompt templates"):
        check_output(out, config=custom, model_key="scripted:default")
