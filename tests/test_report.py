"""The report: summary text, CSV and XLSX exports, and the HTML page's content."""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from PIL import Image

from batchgen.errors import LedgerError
from batchgen.profile_files import load_profile
from batchgen.report.html import render_html, write_html
from batchgen.report.summary import load_report, neutralise, render_summary, write_csv, write_xlsx
from batchgen.status import Status
from tests.helpers import FORMULA_PROMPT, ROWS, WITH_JOB, Row, build_ledger, make_thumbnail


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results file with every status; the cwd is its folder, as after a run there."""
    monkeypatch.chdir(tmp_path)
    return build_ledger(tmp_path)


def test_rows_are_latest_state_in_spreadsheet_order(results: Path) -> None:
    report = load_report(results)
    assert [r.key for r in report.rows] == [r.key for r in ROWS]
    assert report.rows[4].status == Status.IN_PROGRESS
    assert report.rows[4].get("progress") == "45"
    assert report.passthrough == ("campaign", "owner")
    assert report.rows[0].file == results.parent / "out" / "c-01.mp4"


def test_summary_counts_seconds_cost_and_attention(results: Path) -> None:
    report = load_report(results, load_profile("openai"))
    text = render_summary(report)
    assert re.search(r"completed\s+3\b", text)
    assert re.search(r"total\s+15\b", text)
    with_job = [r for r in ROWS if r.status in WITH_JOB]
    seconds = sum(8 if r.row % 2 else 4 for r in with_job)
    assert f"video: {seconds} seconds in {len(with_job)} jobs" in text
    assert f"estimated cost: ${seconds * 0.10:,.2f} (profile openai)" in text
    assert "needs attention: 7 rows" in text
    assert (
        "row 4 (c-03): failed: moderation_blocked: "
        "Your request was blocked by our moderation system." in text
    )
    for key in ("c-04", "c-08", "c-09", "c-10", "c-11", "c-12"):
        assert f"({key}):" in text
    assert "(c-05):" not in text  # in progress is not a problem


def test_summary_without_prices_has_no_cost(results: Path) -> None:
    assert "cost" not in render_summary(load_report(results, load_profile("relay")))
    assert "cost" not in render_summary(load_report(results))


def test_summary_keeps_provider_text_on_one_line(tmp_path: Path) -> None:
    row = Row("k", 2, Status.ERROR, {"error_message": "line one\nline two\x1b[31m red"})
    text = render_summary(load_report(build_ledger(tmp_path, (row,))))
    assert "row 2 (k): error: line one line two [31m red" in text
    assert "\x1b" not in text


def test_missing_or_foreign_results_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no such results file"):
        load_report(tmp_path / "nope.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(LedgerError, match="not a batchgen results file"):
        load_report(tmp_path / "other.csv")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
    ],
)
def test_neutralise_formula_cells(value: str, expected: str) -> None:
    assert neutralise(value) == expected


def test_csv_has_bom_one_row_per_key_links_and_no_formulas(results: Path) -> None:
    out = results.parent / "exports" / "report.csv"
    out.parent.mkdir()
    write_csv(load_report(results), out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["key"] for r in rows] == [r.key for r in ROWS]
    by_key = {r["key"]: r for r in rows}
    assert by_key["c-01"]["file"] == "../out/c-01.mp4"
    assert by_key["c-01"]["campaign"] == "autumn"
    assert by_key["c-03"]["error_code"] == "moderation_blocked"
    assert by_key["c-14"]["campaign"] == "'=1+2"
    assert by_key["c-15"]["prompt"] == "'" + FORMULA_PROMPT
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_xlsx_has_bold_frozen_header_hyperlinks_and_no_formulas(results: Path) -> None:
    out = write_xlsx(load_report(results), results.parent / "report.xlsx")
    sheet = load_workbook(out).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["row", "key", "status"]
    assert header[-2:] == ["campaign", "owner"]
    assert all(c.font.bold for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    rows = {r[1].value: r for r in sheet.iter_rows(min_row=2)}
    link = rows["c-01"][header.index("file")]
    assert link.value == "out/c-01.mp4"
    assert link.hyperlink is not None and link.hyperlink.target == "out/c-01.mp4"
    assert rows["c-01"][header.index("seconds")].value == 4  # numbers stay numbers
    assert rows["c-15"][header.index("prompt")].value == "'" + FORMULA_PROMPT
    assert rows["c-15"][header.index("prompt")].data_type == "s"
    assert not any(c.data_type == "f" for r in sheet.iter_rows() for c in r)
    prompt_column = get_column_letter(header.index("prompt") + 1)
    assert 20 <= (sheet.column_dimensions[prompt_column].width or 0) <= 62


def test_xlsx_drops_control_characters_excel_cannot_hold(tmp_path: Path) -> None:
    row = Row("k", 2, Status.ERROR, {"error_message": "bad\x0bbyte"})
    out = write_xlsx(load_report(build_ledger(tmp_path, (row,))), tmp_path / "r.xlsx")
    sheet = load_workbook(out).active
    assert sheet is not None
    assert "badbyte" in [c.value for c in sheet[2]]


def test_html_escapes_ledger_text_and_embeds_thumbnails(results: Path) -> None:
    page = render_html(load_report(results), results.parent)
    assert "<script>window.__pwned" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert page.count('src="data:image/webp;base64,') == 3
    assert page.count('<article class="card"') == len(ROWS)
    assert 'href="out/c-01.mp4"' in page


def test_html_has_no_external_references(results: Path) -> None:
    page = render_html(load_report(results), results.parent)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


def test_html_links_are_relative_to_the_page_folder(results: Path) -> None:
    out = results.parent / "reports" / "nightly" / "index.html"
    out.parent.mkdir(parents=True)
    write_html(load_report(results), out)
    assert 'href="../../out/c-01.mp4"' in out.read_text(encoding="utf-8")


def test_html_marks_missing_thumbnail_and_video(results: Path) -> None:
    (results.parent / "out" / "c-02.webp").unlink()
    (results.parent / "out" / "c-02.mp4").unlink()
    page = render_html(load_report(results), results.parent)
    assert "thumbnail missing" in page
    assert "(file not found)" in page


def test_html_of_an_empty_results_file(tmp_path: Path) -> None:
    page = render_html(load_report(build_ledger(tmp_path, ())), tmp_path)
    assert "no rows yet" in page


def test_html_scales_large_thumbnails_down_and_skips_non_images(results: Path) -> None:
    make_thumbnail(results.parent / "out" / "c-01.webp", size=(1792, 1024))
    (results.parent / "out" / "c-02.webp").write_text("not an image", encoding="utf-8")
    page = render_html(load_report(results), results.parent)
    uris = re.findall(r'src="data:image/webp;base64,([^"]+)"', page)
    sizes = [Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris]
    assert sizes == [(640, 366), (320, 180)]  # c-01 scaled, c-14 as it was
    assert "thumbnail unreadable" in page
