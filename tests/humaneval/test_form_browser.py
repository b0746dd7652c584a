"""The rating form in a real (headless) browser, from a file:// URL with no network: a model
answer holding markup is shown as text, ratings survive a reload, and the download is a
ratings CSV that ``humaneval import`` reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix_align.folders.results import AnswerRecord
from matrix_align.humaneval.ratings import read_ratings
from matrix_align.humaneval.sheet import export_sheet


@pytest.fixture(scope="module")
def browser():
    """Chromium found as the view tests find it, but closed with this module: Playwright's
    sync API runs an event loop in this thread, and any later test that runs a coroutine
    (every evaluation does) would fail while it is open."""
    from tests.view.conftest import launched_browser

    yield from launched_browser()


EVIL = "<img src=x onerror=\"document.title='pwned'\"></script><b>bold</b>"


def answers_folder(folder: Path) -> Path:
    """An evaluation folder written by hand (the browser's event loop owns this thread, so
    no evaluation can run here); vanilla's answers hold markup."""
    folder.mkdir()
    lines = []
    for item in range(3):
        for entry, answer in (("matrix", f"I can't help with {item}."), ("vanilla", EVIL)):
            record = AnswerRecord(
                id=f"{entry}-{item}",
                benchmark="advbench",
                item_id=f"advbench/{item}",
                entry=entry,
                system=entry,
                model="scripted:default",
                prompt=f"request {item}",
                answer=answer,
            )
            lines.append(record.model_dump_json() + "\n")
    (folder / "results.jsonl").write_text("".join(lines))
    return folder


def test_the_form_rates_and_downloads(browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect  # there when the browser fixture is

    folder, key = export_sheet(answers_folder(tmp_path / "eval"), "matrix,vanilla", n=3)
    form = folder / "for-raters" / "form.html"

    page = browser.new_page(accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(form.as_uri())
    assert page.title() != "pwned" and page.locator("img").count() == 0
    assert EVIL in page.inner_text("#items")  # shown as text, not markup
    page.fill("#rater", "carol")
    page.check("input[name=rating-1][value=A]")
    page.check("input[name=rating-3][value=tie]")
    page.fill("#row-3 textarea", 'a "quoted", comment')
    assert page.inner_text("#status") == "2 of 3 rated"
    page.reload()  # kept in the browser's storage
    # expect() waits for the reloaded page's script (a loaded machine can be slow to run it)
    expect(page.locator("#status")).to_have_text("2 of 3 rated")
    expect(page.locator("#rater")).to_have_value("carol")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    page.close()
    assert not errors and all(url.startswith("file:") for url in requests)
    ratings = read_ratings([saved], key)
    assert [(r.row, r.rater, r.rating, r.comment) for r in ratings] == [
        (1, "carol", "A", ""),
        (3, "carol", "tie", 'a "quoted", comment'),
    ]
