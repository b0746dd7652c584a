"""The site's files, without a browser: what each page contains, input checks, escaping."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from matrix_align.cli.app import main
from matrix_align.errors import MatrixAlignError
from matrix_align.view.diff import word_diff
from matrix_align.view.serve import SiteServer
from matrix_align.view.site import build_site, page_name
from tests.view.conftest import (
    FINAL,
    write_dataset,
    write_evaluation,
    write_trace,
)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", re.IGNORECASE)


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Every element a browser would build from ``html``, with its attributes."""
    collector = _TagCollector()
    collector.feed(html)
    return collector.tags


def _site_text(folder: Path) -> str:
    return "\n".join(
        p.read_text(encoding="utf-8")
        for p in folder.rglob("*")
        if p.suffix in {".html", ".css", ".js"}
    )


def test_scene_site_shows_the_scene(trace, tmp_path):
    site = build_site(write_trace(trace, tmp_path / "scene.json"))
    assert site.kind == "scene" and site.out == tmp_path / "scene-view"
    html = site.index.read_text(encoding="utf-8")
    assert trace.query.replace("'", "&#39;") in html
    for role in trace.roles:
        assert role.name in html
    assert "event-rejected" in html and "nobody can teleport" in html
    assert "replaces rejected #2" in html  # event 1 is the intent
    assert "It invades the neighbour&#39;s privacy." in html
    assert FINAL in html.replace("<ins>", "").replace("</ins>", "").replace("<span>", "").replace(
        "</span>", ""
    )
    assert html.count('<details class="call') == len(trace.calls)
    assert '<details class="call" open' not in html  # calls start collapsed
    assert (site.out / "assets" / "view.js").is_file() and (
        site.out / "assets" / "view.css"
    ).is_file()
    assert not EXTERNAL.search(_site_text(site.out))


def test_a_two_step_scene_shows_two_rounds(trace, tmp_path):
    # The intent event is round 0, before the plan: it once made a 2-step page say 3 rounds.
    assert len(trace.plan) == 2 and {e.round for e in trace.events} == {0, 1, 2}
    html = build_site(write_trace(trace, tmp_path / "scene.json")).index.read_text("utf-8")
    figure = re.search(r'figure-value">(\d+)</div><div class="figure-label">rounds<', html)
    assert figure and figure.group(1) == "2"
    titles = re.findall(r'<h3 class="round-title">([^<]+)', html)
    assert [t.strip() for t in titles] == ["Before the plan", "Round 1", "Round 2"]


def test_untrusted_text_is_escaped_everywhere(xss_trace, tmp_path):
    site = build_site(write_trace(xss_trace, tmp_path / "scene.json"))
    html = site.index.read_text(encoding="utf-8")
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt;" in html
    assert "Content-Security-Policy" in html and "script-src 'self'" in html
    tags = _tags(html)
    assert [attrs for tag, attrs in tags if tag == "script"] == [
        {"src": "assets/view.js", "defer": None}
    ]  # the only script is the site's own file
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]  # no handlers
    assert not [tag for tag, attrs in tags if tag == "img" and attrs.get("src") == "x"]


def test_word_diff_marks_removed_and_added_words():
    diff = word_diff("Break the lock with a hammer.", "Ask the owner for the key.")
    removed = "".join(s.text for s in diff.before if s.op == "removed")
    added = "".join(s.text for s in diff.after if s.op == "added")
    assert "hammer" in removed and "Break" in removed
    assert "owner" in added and "key" in added
    assert "".join(s.text for s in diff.before) == "Break the lock with a hammer."
    assert "".join(s.text for s in diff.after) == "Ask the owner for the key."
    same = word_diff("Same text.", "Same text.")
    assert same.similarity == 1.0 and all(s.op == "same" for s in same.after)


def test_dataset_site_lists_samples_failures_and_links_scenes(trace, tmp_path):
    folder = write_dataset(tmp_path / "run", trace, n=12)
    site = build_site(folder)
    assert site.kind == "dataset" and site.out == folder / "view"
    html = site.index.read_text(encoding="utf-8")
    assert html.count("data-item ") == 12 + 2  # samples and failures
    assert "Failed query 1" in html and "timeout" in html
    assert "3 turns" not in html and "2 turns" in html  # the multi-turn sample
    assert any("line 4: not valid JSON" in w for w in site.warnings)
    assert "line 4: not valid JSON" in html
    assert 'href="scenes/sample000.html"' in html
    scene = (site.out / "scenes" / "sample000.html").read_text(encoding="utf-8")
    assert "Query number 0" in scene and 'href="../assets/view.css"' in scene
    assert 'href="../index.html"' in scene
    assert "resumed once &lt;b&gt;not bold&lt;/b&gt;" in html  # summary.json, escaped
    assert "<script>window" not in html and "<script>window" not in _site_text(site.out)


def test_evaluation_site_shows_report_plots_and_answers(trace, tmp_path):
    folder = write_evaluation(tmp_path / "eval", trace)
    site = build_site(folder, tmp_path / "site")
    html = site.index.read_text(encoding="utf-8")
    assert "<table>" in html and "67 / 33 / 0 (n=6)" in html  # the report's own table
    assert 'src="plots/plots__pairwise.png"' in html  # the report's plot, from the site
    assert "plots/plots__cost.png" in html  # a plot the report does not show: shown apart
    assert "https://example.com" not in html and "image not in the site" in html
    assert "&lt;script&gt;window.__pwned = 3&lt;/script&gt;" in html
    assert 'href="#results"' in html  # the link to answers.md points at the page's section
    assert html.count('class="result"') == 12
    assert "A careful answer 5" in html and "A careless answer 5" in html
    assert "matrix vs vanilla" in html and "win &lt;b&gt;!&lt;/b&gt;" in html
    assert "superseded-verdict" not in html and "An older matrix answer" not in html
    assert html.index("A careful answer 1") < html.index("A careless answer 1")  # run order
    assert "8 / 4 / 0" in html  # the pairwise headline figure: win / tie / lose
    assert "no reply in 60 s" in html  # errors.jsonl
    assert (site.out / "plots" / "plots__pairwise.png").read_bytes()[:4] == b"\x89PNG"
    assert 'href="scenes/matrix-0-1.html"' in html
    scene = (site.out / "scenes" / "matrix-0-1.html").read_text(encoding="utf-8")
    assert "nobody can teleport" in scene and 'href="../index.html"' in scene


@pytest.mark.parametrize("kind", ["missing", "empty folder", "not a trace", "binary"])
def test_bad_input_is_a_clear_error(kind, tmp_path):
    path = tmp_path / "input.json"
    if kind == "empty folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif kind == "not a trace":
        path.write_text('{"hello": "world"}', encoding="utf-8")
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(MatrixAlignError) as caught:
        build_site(path)
    assert "scene trace" in caught.value.hint and "generate" in caught.value.hint
    assert "evaluate" in caught.value.hint
    assert not list(tmp_path.glob("*-view")) and not list(tmp_path.glob(".*tmp*"))


def test_command_line_reports_bad_input_without_traceback(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "nothing-here"
    folder.mkdir()
    monkeypatch.setattr(sys, "argv", ["matrix-align", "view", str(folder)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "neither a `generate` output" in err and "Traceback" not in err


def test_never_replaces_a_folder_it_did_not_write(trace, tmp_path):
    source = write_trace(trace, tmp_path / "scene.json")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="not a site written by"):
        build_site(source, precious)
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "keep me"
    first = build_site(source, tmp_path / "site")
    (first.out / "stale.html").write_text("old", encoding="utf-8")
    second = build_site(source, tmp_path / "site")  # a site it wrote is replaced whole
    assert second.index.is_file() and not (second.out / "stale.html").exists()


def test_page_names_cannot_leave_the_site():
    assert page_name("sample001") == "sample001.html"
    for hostile in ("../../etc/passwd", "/abs", "a/b", ".hidden", "x" * 200, "é"):
        name = page_name(hostile)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.html", name) and "/" not in name


def test_server_binds_localhost_and_serves_only_files(trace, tmp_path):
    site = build_site(write_trace(trace, tmp_path / "scene.json"))
    with SiteServer(site.out, 0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "index.html", timeout=5) as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            assert trace.roles[0].name in response.read().decode("utf-8")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + "assets/", timeout=5)  # no directory listings


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT at its default and unblocked. A child inherits ignored and blocked
    signals, and after the whole suite has run the test process's own state is not that of
    a user's shell (the server then never saw the Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_serve_from_the_command_line_stops_on_ctrl_c(trace, tmp_path):
    source = write_trace(trace, tmp_path / "scene.json")
    command = [sys.executable, "-m", "matrix_align", "view", str(source), "--serve", "--port", "0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    try:
        url = None
        for line in process.stdout:  # the address is printed once the server listens
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                url = found.group(0)
                break
        assert url, "the server's address was never printed"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert trace.roles[0].name in response.read().decode("utf-8")
        process.send_signal(signal.SIGINT)
        # It exits in well under a second; the margin is for a shared, loaded CI machine.
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_links_in_an_evaluation_folder_are_never_copied(trace, tmp_path):
    folder = write_evaluation(tmp_path / "eval", trace)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    (folder / "plots" / "evil.png").symlink_to(secret)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "leak.png").write_text("TOP-SECRET", encoding="utf-8")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    site = build_site(folder, tmp_path / "site")
    copied = [p for p in site.out.rglob("*") if p.is_file()]
    assert not any("TOP-SECRET" in p.read_bytes().decode("utf-8", "replace") for p in copied)
    assert any("evil.png: a link" in w for w in site.warnings)
    assert any("leak.png: a link" in w for w in site.warnings)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes")
def test_a_named_pipe_is_refused_not_read(tmp_path):
    import os

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(MatrixAlignError, match="not a regular file"):
        build_site(fifo)


def test_leftovers_of_a_killed_build_are_swept(trace, tmp_path):
    from tests.test_io import dead_pid

    source = write_trace(trace, tmp_path / "scene.json")
    leftover = tmp_path / f".scene-view.{dead_pid()}-abcd.tmp"
    leftover.mkdir()
    (leftover / "index.html").write_text("half", encoding="utf-8")
    build_site(source)
    assert not leftover.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_server_answers_only_its_own_host_name(trace, tmp_path):
    site = build_site(write_trace(trace, tmp_path / "scene.json"))
    with SiteServer(site.out, 0) as server:
        for host, allowed in ((f"127.0.0.1:{server.port}", True),
                              (f"localhost:{server.port}", True),
                              (f"evil.example:{server.port}", False)):  # fmt: skip
            request = urllib.request.Request(server.url + "index.html", headers={"Host": host})
            if allowed:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
            else:
                with pytest.raises(urllib.error.HTTPError) as refused:
                    urllib.request.urlopen(request, timeout=5)
                assert refused.value.code == 403


def test_an_unusable_out_is_one_clear_error(trace, tmp_path):
    source = write_trace(trace, tmp_path / "scene.json")
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(MatrixAlignError, match="is a file, not a folder"):
        build_site(source, a_file / "site")
    with pytest.raises(MatrixAlignError, match="not a site written by"):
        build_site(source, a_file)


def test_credentials_in_stored_errors_are_not_shown(trace, tmp_path):
    import json

    folder = write_dataset(tmp_path / "run", trace, n=2)
    error = {"id": "x1", "source": "s", "mode": "matrix", "reason": "backend_rejected",
             "detail": "openai:m at http://bob:s3cret@10.0.0.1/v1: HTTP 404"}  # fmt: skip
    with (folder / "errors.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(error) + "\n")
    site = build_site(folder, tmp_path / "site")
    html = site.index.read_text(encoding="utf-8")
    assert "s3cret" not in html and "http://***@10.0.0.1/v1" in html


def test_an_out_folder_that_cannot_be_replaced_is_a_clear_error(trace, tmp_path, monkeypatch):
    """An empty --out that cannot be moved (immutable, chattr +i; simulated, as tests run
    without root) is one clear error, and nothing is left behind."""
    source = write_trace(trace, tmp_path / "scene.json")
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    rename = Path.rename

    def refuse(self: Path, target: Path) -> Path:
        if self == stuck:
            raise PermissionError(1, "Operation not permitted", str(self))
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(MatrixAlignError, match="Cannot replace .*stuck: Operation not permitted"):
        build_site(source, stuck)
    assert stuck.is_dir() and not any(stuck.iterdir())
    assert not list(tmp_path.glob(".*tmp*"))  # no staging folder left
