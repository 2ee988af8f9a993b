"""The HTML report as a person sees it: rendered by headless Debian Chromium via playwright.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``make test``
installs it). Without it the tests fail under CI and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Route,
    sync_playwright,
)

from batchgen.report.html import write_html
from batchgen.report.summary import load_report
from tests.helpers import ROWS, XSS_PROMPT, build_ledger

pytestmark = pytest.mark.timeout(90)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
ATTENTION_ROWS = 7  # failed, error, rejected, invalid, unresolved, expired, lost in ROWS


@dataclass
class Traffic:
    """Every URL the page asked for, and the http(s) ones that were blocked."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # and uncaught JS errors


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the module."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=TIMEOUT_MS
        )
        yield browser
        browser.close()


def require_chromium() -> None:
    """Fail under CI, skip elsewhere, with the fix, when Debian's chromium is missing."""
    if Path(CHROMIUM).exists():
        return
    missing = f"Debian chromium not found at {CHROMIUM}: apt-get install chromium (or make test)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI: {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture
def report_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The HTML report of a ledger with every status, in a folder below the videos'."""
    monkeypatch.chdir(tmp_path)
    results = build_ledger(tmp_path)
    out = tmp_path / "reports" / "index.html"
    out.parent.mkdir()
    return write_html(load_report(results), out)


def open_report(
    browser: Browser, path: Path, *, width: int = 1280, js: bool = True
) -> tuple[Page, Traffic]:
    """Load ``path`` at ``width`` px with every http(s) request aborted and recorded."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, java_script_enabled=js, offline=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    traffic = Traffic()

    def block(route: Route) -> None:
        traffic.blocked.append(route.request.url)
        route.abort()

    def on_request(request: Request) -> None:
        traffic.requested.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            traffic.console_errors.append(message.text)

    def on_page_error(error: Error) -> None:
        traffic.console_errors.append(f"uncaught: {error.message}")

    context.route(re.compile(r"^https?://"), block)
    page = context.new_page()
    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.goto(path.as_uri(), wait_until="load")
    return page, traffic


def visible_keys(page: Page) -> list[str]:
    """The ``row N · key`` labels of the cards a person can see."""
    return page.locator(".card:visible .where").all_inner_texts()


def test_every_row_is_a_visible_card_and_nothing_is_fetched(
    browser: Browser, report_file: Path
) -> None:
    page, traffic = open_report(browser, report_file)
    assert page.locator(".card:visible").count() == len(ROWS)
    assert traffic.blocked == []
    assert all(url.startswith(("file:", "data:")) for url in traffic.requested), traffic
    assert traffic.console_errors == []  # a CSP refusal of our own CSS/JS would show here
    page.context.close()


def test_failed_card_shows_its_reason(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    card = page.locator('.card[data-status="failed"]')
    assert card.locator(".badge").inner_text() == "failed"
    reason = card.locator(".reason")
    assert reason.is_visible()
    assert "moderation_blocked: Your request was blocked" in reason.inner_text()
    page.context.close()


def test_thumbnails_render_and_video_link_points_at_the_file(
    browser: Browser, report_file: Path
) -> None:
    page, _ = open_report(browser, report_file)
    widths = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth)")
    assert widths == [320, 320, 320]
    link = page.locator('.card:has-text("c-01") a.video')
    assert link.get_attribute("href") == "../out/c-01.mp4"
    target = unquote(urlparse(link.evaluate("a => a.href")).path)
    assert Path(target) == report_file.parent.parent / "out" / "c-01.mp4"
    assert Path(target).is_file()
    page.context.close()


def test_status_filters_hide_and_show_cards(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    filters = page.locator(".filters")
    assert filters.is_visible()
    filters.locator('button[data-filter="status:failed"]').click()
    assert visible_keys(page) == ["row 4 · c-03"]
    assert "1 of 15 shown" in filters.inner_text()
    filters.locator('button[data-filter="attention"]').click()
    assert len(visible_keys(page)) == ATTENTION_ROWS
    filters.locator('button[data-filter="status:completed"]').click()
    assert len(visible_keys(page)) == 3
    filters.locator('button[data-filter="status:completed"]').click()  # again: back to all
    assert len(visible_keys(page)) == len(ROWS)
    assert filters.locator('button[aria-pressed="true"]').inner_text().startswith("All")
    page.context.close()


def test_filter_buttons_show_counts(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    labels = page.locator(".filters button").all_inner_texts()
    assert "All 15" in labels
    assert f"Needs attention {ATTENTION_ROWS}" in labels
    assert "completed 3" in labels
    page.context.close()


def test_without_javascript_every_card_shows(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file, js=False)
    assert page.locator(".card:visible").count() == len(ROWS)
    assert not page.locator(".filters").is_visible()  # buttons that could do nothing
    page.context.close()


def test_phone_width_is_one_column_without_sideways_scroll(
    browser: Browser, report_file: Path
) -> None:
    page, _ = open_report(browser, report_file, width=390)
    lefts = page.eval_on_selector_all(".card", "els => els.map(e => e.getBoundingClientRect().x)")
    assert len(set(lefts)) == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()


def test_desktop_width_is_a_grid(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file, width=1280)
    lefts = page.eval_on_selector_all(".card", "els => els.map(e => e.getBoundingClientRect().x)")
    assert len(set(lefts)) >= 3
    page.context.close()


def test_script_in_a_prompt_is_shown_as_text(browser: Browser, report_file: Path) -> None:
    page, traffic = open_report(browser, report_file)
    prompt = page.locator('.card:has-text("c-14") .prompt')
    assert prompt.inner_text() == XSS_PROMPT
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".card script, .card img[src='x']").count() == 0
    assert traffic.blocked == []
    page.context.close()
