"""The HTML report as a person sees it: rendered by headless Debian Chromium via playwright.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``make test``
installs it). Without it the tests fail under CI and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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
from tests.helpers import ROWS, XSS_PROMPT, Row, build_ledger, make_image

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


def team_row(item: Row) -> Row:
    """``item`` with the team's columns as a real sheet has them: two owners, two campaigns."""
    team = {"owner": "mia" if item.row % 2 else "noor"}
    if "campaign" not in item.changes:
        team["campaign"] = "spring" if item.row <= 8 else "autumn"
    return replace(item, changes={**item.changes, **team})


TEAM_ROWS = tuple(team_row(item) for item in ROWS)
NOOR = [f"row {r.row} · {r.key}" for r in TEAM_ROWS if r.row % 2 == 0]


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
    make_image(tmp_path / "images" / "boat.png", size=(720, 1280))
    rows = tuple(
        replace(r, changes={**r.changes, "image": "images/boat.png"}) if r.key == "c-01" else r
        for r in TEAM_ROWS
    )
    results = build_ledger(tmp_path, rows)
    out = tmp_path / "reports" / "index.html"
    out.parent.mkdir()
    return write_html(load_report(results), out)


def open_report(
    browser: Browser,
    path: Path,
    *,
    width: int = 1280,
    js: bool = True,
    zone: str = "Europe/Berlin",
) -> tuple[Page, Traffic]:
    """Load ``path`` at ``width`` px in time zone ``zone``, every http(s) request aborted."""
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        java_script_enabled=js,
        offline=True,
        timezone_id=zone,
        locale="en-US",
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
    widths = page.eval_on_selector_all(
        "img.result", "els => els.map(e => e.complete && e.naturalWidth)"
    )
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


def test_cards_show_the_teams_columns(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    team = page.locator('.card:has-text("c-03") .team')
    assert team.inner_text().split() == ["campaign", "spring", "owner", "noor"]
    assert page.locator(".card:visible .team").count() == len(ROWS)
    page.context.close()


def test_filter_by_a_team_column_combines_with_the_status_filter(
    browser: Browser, report_file: Path
) -> None:
    page, _ = open_report(browser, report_file)
    filters = page.locator(".filters")
    filters.locator('select[data-column-filter="owner"]').select_option("noor")
    assert visible_keys(page) == NOOR
    filters.locator('button[data-filter="attention"]').click()
    assert visible_keys(page) == ["row 4 · c-03", "row 10 · c-09", "row 12 · c-11"]
    assert "3 of 15 shown" in filters.inner_text()
    filters.locator('select[data-column-filter="owner"]').select_option("")
    assert len(visible_keys(page)) == ATTENTION_ROWS
    page.context.close()


def test_group_by_a_team_column_puts_cards_under_headings(
    browser: Browser, report_file: Path
) -> None:
    page, _ = open_report(browser, report_file)
    page.locator("#group-by").select_option("owner")
    headings = page.locator(".group-heading:visible").all_inner_texts()
    assert headings == ["owner: mia (7)", "owner: noor (8)"]
    # document order: each heading, then its own cards
    order = page.eval_on_selector_all(
        ".group-heading, .card",
        "els => els.map(e => e.classList.contains('card') ? "
        "e.querySelector('.where').textContent : e.textContent)",
    )
    assert order[order.index("owner: noor (8)") + 1 :] == NOOR
    page.locator("#group-by").select_option("status")
    statuses = page.locator(".group-heading:visible").all_inner_texts()
    assert statuses[:3] == [
        "status: invalid (1)",
        "status: submitting (1)",
        "status: queued (1)",
    ]
    assert "status: failed (1)" in statuses
    page.locator('select[data-column-filter="campaign"]').select_option("autumn")
    assert page.locator(".group-heading:visible", has_text="status: queued").count() == 0
    page.locator("#group-by").select_option("")
    assert page.locator(".group-heading").count() == 0
    page.context.close()


def test_cards_needing_attention_say_what_to_do_next(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)

    def next_step(key: str) -> str:
        return page.locator(f'.card:has-text("{key}") .next').inner_text()

    assert "--retry-rejected" in next_step("c-09")  # invalid: the image is 640x480
    assert "image" in next_step("c-09")
    assert "batchgen profiles" in next_step("c-08")  # rejected: size not allowed
    assert "batchgen resolve RESULTS c-10" in next_step("c-10")  # unresolved
    assert "moderation refused the prompt: rewrite it" in next_step("c-03")
    assert "link expired" in next_step("c-11")
    assert page.locator('.card[data-attention="true"] .next').count() == ATTENTION_ROWS
    assert page.locator('.card[data-status="downloaded"] .next').count() == 0
    page.context.close()


def test_the_local_video_plays_inline_with_the_thumbnail_as_poster(
    browser: Browser, report_file: Path
) -> None:
    page, traffic = open_report(browser, report_file)
    frame = page.locator('.card:has-text("c-01") .thumb')
    video = frame.locator("video.inline")
    assert video.get_attribute("src") == "../out/c-01.mp4"
    target = unquote(urlparse(video.evaluate("v => v.src")).path)
    assert Path(target) == report_file.parent.parent / "out" / "c-01.mp4"
    assert not video.is_visible()  # the thumbnail shows until Play
    page.evaluate(
        "window.__refused = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__refused.push(e.violatedDirective))"
    )
    with page.expect_request(lambda request: request.url.endswith("/out/c-01.mp4")):
        frame.locator("button.play").click()  # the page's CSP lets the file load
    assert video.is_visible()
    assert video.evaluate("v => v.poster") == frame.locator("img.result").get_attribute("src")
    assert page.evaluate("window.__refused") == []
    assert traffic.blocked == []
    page.context.close()


def test_the_reference_image_is_beside_the_result(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    frame = page.locator('.card:has-text("c-01") .thumb')
    assert frame.locator("img.result").is_visible()
    reference = frame.locator("figure.ref img")
    assert reference.is_visible()
    assert reference.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [135, 240]
    page.context.close()


def test_times_are_the_readers_local_time_with_its_zone(
    browser: Browser, report_file: Path
) -> None:
    tokyo, _ = open_report(browser, report_file, zone="Asia/Tokyo")
    stamp = tokyo.locator('.card:has-text("c-03") .updated time')
    assert "GMT+9" in stamp.inner_text()
    utc = stamp.get_attribute("datetime") or ""
    assert stamp.get_attribute("title") == f"{utc} (UTC)"
    assert "GMT+9" in tokyo.locator(".source time").inner_text()
    tokyo.context.close()
    new_york, _ = open_report(browser, report_file, zone="America/New_York")
    zone = new_york.locator('.card:has-text("c-03") .updated time').inner_text()
    assert zone.endswith(("EST", "EDT"))
    new_york.context.close()


def test_summaries_by_campaign_and_owner_head_the_page(browser: Browser, report_file: Path) -> None:
    page, _ = open_report(browser, report_file)
    captions = page.locator(".summaries caption").all_inner_texts()
    assert captions == ["by campaign", "by owner"]
    owners = page.locator('.summary:has(caption:text("by owner")) tbody th').all_inner_texts()
    assert owners == ["mia", "noor"]
    noor = page.locator('.summary:has(caption:text("by owner")) tbody tr', has_text="noor")
    assert noor.locator("td").first.inner_text() == "8"
    page.context.close()
