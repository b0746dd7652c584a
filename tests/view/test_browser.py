"""The site in a real headless Chromium: what a reader sees, what runs, what is requested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from matrix_align.view.serve import SiteServer
from matrix_align.view.site import build_site
from tests.view.conftest import (
    FINAL,
    XSS_IMG,
    XSS_SCRIPT,
    write_dataset,
    write_evaluation,
    write_trace,
)


def _count_reads(page, pattern: str) -> None:
    """Wait until the list's counter reads ``pattern`` (the search is debounced). A locator,
    not ``wait_for_function``: the pages' policy forbids the eval that the latter needs."""
    page.locator(".list-count", has_text=re.compile("^" + pattern)).wait_for(timeout=15000)


def _only_own_files(requests: list[str], site: Path, server_url: str | None = None) -> None:
    """Every request went to the site's own files (on disk, or on our localhost server)."""
    root = site.resolve().as_uri() + "/"
    allowed = tuple(p for p in (root, server_url) if p)
    strangers = [url for url in requests if not url.startswith(allowed)]
    assert not strangers, f"the page requested outside its own files: {strangers}"
    assert requests, "no request was recorded at all"


def test_scene_page_shows_roles_rejected_action_and_final_answer(trace, watched, tmp_path):
    site = build_site(write_trace(trace, tmp_path / "scene.json"))
    page = watched.open(site.index.as_uri())
    roles = page.locator("#roles .role-name").all_inner_texts()
    assert [r.split()[0:2] for r in roles][0] == ["the", "asker"]
    assert {r.replace(" ego", "").strip() for r in roles} == {r.name for r in trace.roles}
    rejected = page.locator(".event-rejected")
    assert rejected.count() == 1 and rejected.is_visible()
    assert "✗ rejected" in rejected.inner_text() and "REJECTED" in rejected.inner_text()
    assert "nobody can teleport" in rejected.inner_text()
    final = page.locator(".final-answer")
    assert final.is_visible() and final.inner_text().strip() == FINAL
    assert page.locator("del").count() >= 1 and page.locator("ins").count() >= 1
    # Model calls start collapsed; "expand all" opens them, a stage filter hides the others.
    calls = page.locator("details.call")
    assert calls.count() == len(trace.calls)
    assert (
        page.evaluate("[...document.querySelectorAll('details.call')].some(d => d.open)") is False
    )
    page.click(".calls-expand")
    assert page.evaluate("[...document.querySelectorAll('details.call')].every(d => d.open)")
    page.select_option(".calls-stage", "modulate")
    visible = page.locator("details.call:visible")
    assert visible.count() == sum(1 for c in trace.calls if c.stage == "modulate")
    assert not watched.errors and not watched.dialogs
    _only_own_files(watched.requests, site.out)


def test_model_text_renders_as_text_and_runs_nothing(xss_trace, watched, tmp_path):
    site = build_site(write_trace(xss_trace, tmp_path / "scene.json"))
    page = watched.open(site.index.as_uri())
    page.click(".calls-expand")  # the payload is inside the calls too: open them all
    page.wait_for_timeout(200)
    assert XSS_SCRIPT in page.locator(".final-answer").inner_text()
    assert XSS_IMG in page.locator(".final-answer").inner_text()
    assert XSS_IMG in page.locator(".query-text").inner_text()
    assert XSS_SCRIPT in page.locator("#timeline").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert watched.dialogs == []
    assert page.evaluate("document.querySelectorAll('img[onerror], [onerror]').length") == 0
    assert page.evaluate("document.scripts.length") == 1
    _only_own_files(watched.requests, site.out)  # <img src=x> was never built, so never fetched


def test_dataset_search_filters_and_pages(trace, watched, tmp_path):
    site = build_site(write_dataset(tmp_path / "run", trace, n=60))
    page = watched.open(site.index.as_uri())
    page.wait_for_selector("#sample-list[data-ready=true]")
    rows = page.locator("#sample-list tr[data-item]:visible")
    assert rows.count() == 50  # 62 rows, 50 a page
    page.locator(".pager-next").first.click()
    assert rows.count() == 12
    page.fill(".list-search", "gardens")
    _count_reads(page, r"\d+ of \d+ match")
    assert rows.count() == 20 and all("gardens" in t for t in rows.all_inner_texts())
    page.fill(".list-search", "number 42 gardens")  # every word must match
    _count_reads(page, r"1 of ")
    assert rows.count() == 1
    page.fill(".list-search", "")
    page.select_option(".list-filter[data-key=status]", "failed")
    _count_reads(page, r"2 of ")
    assert rows.count() == 2 and "timeout" in rows.first.inner_text()
    page.fill(".list-search", "no such text anywhere")
    page.wait_for_selector(".list-empty:visible")
    # The state lives in the URL, so going back from a scene restores the search.
    assert "status=failed" in page.url
    page.select_option(".list-filter[data-key=status]", "")
    page.fill(".list-search", "sample007")  # the sample whose answer is an XSS payload
    _count_reads(page, r"1 of ")
    assert page.evaluate("window.__pwned") is None and XSS_SCRIPT in rows.first.inner_text()
    page.locator("tr[data-item]:visible .scene-link").first.click()
    page.wait_for_selector(".final-answer")
    assert "Query number 7" in page.locator(".query-text").inner_text()
    assert page.evaluate("window.__pwned") is None and not watched.dialogs
    assert not watched.errors
    _only_own_files(watched.requests, site.out)


@pytest.mark.parametrize("served", [False, True], ids=["file", "localhost"])
def test_evaluation_page_requests_only_its_own_files(served, trace, watched, tmp_path):
    site = build_site(write_evaluation(tmp_path / "eval", trace), tmp_path / "site")
    if served:
        with SiteServer(site.out, 0) as server:
            page = watched.open(server.url)
            _check_evaluation_page(page, watched)
            _only_own_files(watched.requests, site.out, server.url)
    else:
        page = watched.open(site.index.as_uri())
        _check_evaluation_page(page, watched)
        _only_own_files(watched.requests, site.out)


def _check_evaluation_page(page, watched) -> None:
    page.wait_for_selector("#result-list[data-ready=true]")
    assert page.locator(".markdown table").is_visible()
    images = page.locator("img")
    assert images.count() >= 3  # the icon, the report's plot, the plot the report omits
    for index in range(images.count()):  # every image loads, from the site itself
        image = images.nth(index)
        image.scroll_into_view_if_needed()  # plots load lazily
        for _ in range(100):
            if image.evaluate("i => i.complete && i.naturalWidth > 0"):
                break
            page.wait_for_timeout(100)
        else:
            raise AssertionError(f"image {image.get_attribute('src')} never loaded")
    page.select_option(".list-filter[data-key=outcomes]", "pairwise:tie")
    _count_reads(page, r"4 of ")
    assert page.locator(".result:visible").count() == 4
    assert page.evaluate("window.__pwned") is None and not watched.dialogs and not watched.errors
