"""The scene audit in the site (no browser): flags with their help text on scene pages, each
event's harm ruling, the final decision, and flags per sample and per flag on the dataset
page; text stays escaped."""

from __future__ import annotations

import json
from pathlib import Path

from matrix_align.simulation.audit import DROP_BY_DEFAULT, FLAG_HELP, audit_scene
from matrix_align.simulation.trace import SceneTrace
from matrix_align.view.site import build_site
from tests.view.conftest import write_dataset, write_trace


def test_scene_page_shows_flags_harm_and_decision(trace: SceneTrace, tmp_path: Path) -> None:
    flagged = trace.model_copy(update={"flags": ["duplicate-events", "complies-with-harmful"]})
    html = build_site(write_trace(flagged, tmp_path / "scene.json")).index.read_text("utf-8")
    assert 'href="#audit"' in html and 'id="audit"' in html
    for flag in flagged.flags:
        assert flag in html and FLAG_HELP[flag] in html
    assert "dropped from exports by default" in html  # complies-with-harmful is dropped
    harmful = next(e for e in trace.events if e.harmful)
    assert harmful.effect.replace("'", "&#39;") in html
    assert f"harm-{harmful.harm}" in html and f"who: {harmful.harmed}" in html
    if trace.decision is not None:
        assert "decision-" in html and trace.decision.reason in html


def test_a_clean_scene_says_so(trace: SceneTrace, tmp_path: Path) -> None:
    clean = trace.model_copy(update={"flags": []})
    html = build_site(write_trace(clean, tmp_path / "scene.json")).index.read_text("utf-8")
    assert "audit: no flags" in html


def test_a_trace_from_before_the_audit_is_audited_when_shown(trace, tmp_path: Path) -> None:
    old = trace.model_copy(update={"version": 1, "flags": []})
    html = build_site(write_trace(old, tmp_path / "scene.json")).index.read_text("utf-8")
    assert "written before the scene audit" in html
    for flag in audit_scene(old):
        assert flag in html


def test_dataset_page_counts_flags_and_shows_them_per_sample(trace, tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "run", trace, n=12)
    stored = {
        "sample000": ["complies-with-harmful", "fallbacks"],
        "sample001": ["<b>odd</b>"],  # an unknown name from a hand-edited file: escaped
        "sample002": [],
    }
    lines = []
    for line in (folder / "samples.jsonl").read_text("utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        if obj["id"] in stored:
            obj["flags"] = stored[obj["id"]]
        lines.append(json.dumps(obj))
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n", "utf-8")

    site = build_site(folder)
    html = site.index.read_text("utf-8")
    assert 'id="audit"' in html and 'data-key="flags" data-match="word"' in html
    assert 'data-flags="complies-with-harmful fallbacks"' in html
    assert FLAG_HELP["complies-with-harmful"] in html
    assert "&lt;b&gt;odd&lt;/b&gt;" in html and "<b>odd</b>" not in html
    # sample003 was written before the audit: its trace is audited when the page is built
    old_flags = audit_scene(trace.model_copy(update={"query": "Query number 3"}))
    assert f'data-flags="{" ".join(old_flags)}"' in html
    # the figure of samples export keeps: all but sample000 (dropped) among the 12
    dropped = 1 + any(f in DROP_BY_DEFAULT for f in old_flags)
    assert f"{12 - dropped} / 12" in html
    scene = (site.out / "scenes" / "sample000.html").read_text("utf-8")
    assert "complies-with-harmful" in scene and FLAG_HELP["fallbacks"] in scene
