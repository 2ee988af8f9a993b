"""Spreadsheets as teams really have them: a title above the header, Excel's European CSV
(semicolons, Windows-1252), ``header_row:``, ``delimiter:``, ``encoding:`` and sheet names
typed in any case, through the real ``batchgen validate`` and ``batchgen run --mock``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import openpyxl
import pytest

from tests.helpers import FAST, Invoke, results

TITLE = "Spring campaign — video brief"
HEADER = ["id", "prompt", "seconds", "size"]
BRIEF: list[list[object]] = [
    ["kite", "a red kite over the dunes", 4, "720x1280"],
    ["fox", "a fox in the snow; slow motion", 8, "1280x720"],
    ["boat", "a paper boat in the rain", 4, "720x1280"],
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Messages name files relative to the current folder.
    monkeypatch.chdir(tmp_path)


def titled_workbook(path: Path, rows: Sequence[Sequence[object]], sheet: str = "Brief") -> Path:
    """An .xlsx as a team writes one: a merged title row, a blank row, then the table."""
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["read me first"])
    brief = workbook.create_sheet(sheet)
    brief.append([TITLE])
    brief.merge_cells("A1:D1")
    brief.append([])
    for row in rows:
        brief.append(list(row))
    workbook.save(path)
    return path


def european_csv(path: Path, encoding: str, title: bool = False) -> Path:
    """What Excel writes as "CSV" where the comma is the decimal mark: semicolons, quotes
    around a cell holding one, CRLF; a title row is padded with empty cells."""
    lines = [f"{TITLE};;;", ";;;"] if title else []
    lines.append(";".join(HEADER))
    for key, prompt, seconds, size in BRIEF:
        cell = f'"{prompt}"' if ";" in str(prompt) else str(prompt)
        lines.append(f"{key};{cell};{seconds};{size}")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def sent_prompts(manifest: Path) -> dict[str, tuple[str, str]]:
    """Each row's prompt and status in the results file of ``manifest``."""
    return {
        record["key"]: (record["prompt"], record["status"]) for record in results(manifest).values()
    }


def assert_sent_whole(invoke: Invoke, manifest: Path, *extra: str) -> None:
    run = invoke("run", manifest, "--mock", *FAST, *extra)
    assert run.exit_code == 0, run.output
    assert sent_prompts(manifest) == {key: (prompt, "queued") for key, prompt, *_ in BRIEF}, (
        "every row sent once, with its prompt whole"
    )


def test_a_title_above_the_header_is_skipped_and_said(tmp_path: Path, invoke: Invoke) -> None:
    manifest = titled_workbook(tmp_path / "brief.xlsx", [HEADER, *BRIEF], sheet="Brief")
    # The brief is the second sheet; the first is notes.
    check = invoke("validate", manifest, "--sheet", "brief")
    assert check.exit_code == 0, check.output
    assert "brief.xlsx: skipped 2 rows above the header (row 3)" in check.stdout
    assert "3 rows, 3 valid, 0 invalid" in check.stdout
    assert_sent_whole(invoke, manifest, "--sheet", "BRIEF")
    assert {record["row"] for record in results(manifest).values()} == {"4", "5", "6"}


def test_rows_below_a_title_keep_the_numbers_the_user_sees(tmp_path: Path, invoke: Invoke) -> None:
    bad: list[Sequence[object]] = [HEADER, BRIEF[0], ["fox", "a fox", "eight", "1280x720"]]
    manifest = titled_workbook(tmp_path / "brief.xlsx", bad)
    for command in (("validate",), ("run", "--mock", *FAST)):
        result = invoke(*command[:1], manifest, "--sheet", "Brief", *command[1:])
        assert result.exit_code == 2, result.output
        assert "brief.xlsx:5: seconds:" in result.stderr
        assert "has a value but no header" not in result.output
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.results.csv")), "nothing sent"


def test_a_misspelt_header_is_the_near_miss_it_is(tmp_path: Path, invoke: Invoke) -> None:
    manifest = tmp_path / "brief.csv"
    manifest.write_text("id,Promt,seconds\r\nkite,a red kite,4\r\n", encoding="utf-8")
    result = invoke("validate", manifest)
    assert result.exit_code == 2, result.output
    assert "brief.csv:1: prompt: no prompt column" in result.stderr
    assert "'promt' is probably it" in result.stderr


@pytest.mark.parametrize("title", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_excels_european_csv(tmp_path: Path, invoke: Invoke, encoding: str, title: bool) -> None:
    manifest = european_csv(tmp_path / "brief.csv", encoding, title)
    check = invoke("validate", manifest)
    assert check.exit_code == 0, check.output
    assert "3 rows, 3 valid" in check.stdout
    skipped = "brief.csv: skipped 2 rows above the header (row 3)"
    assert (skipped in check.stdout) == title
    assert_sent_whole(invoke, manifest)
    rows = {record["key"]: record["row"] for record in results(manifest).values()}
    assert rows["kite"] == ("4" if title else "2"), "the row number the user sees"


def test_windows_1252_needs_its_encoding_named(tmp_path: Path, invoke: Invoke) -> None:
    european_csv(tmp_path / "brief.csv", "cp1252", title=True)
    data = (tmp_path / "brief.csv").read_bytes()
    western = "crème brûlée".encode("cp1252")
    (tmp_path / "brief.csv").write_bytes(data.replace(b"a red kite", western))
    refused = invoke("validate", "brief.csv")
    assert refused.exit_code == 2, refused.output
    # The first byte that is not UTF-8 is the title's dash, in row 1 as Excel shows it.
    assert "brief.csv:1: column A: byte 0x97 is not UTF-8" in refused.stderr
    assert "encoding: cp1252" in refused.stderr, "the way out is named"

    wrapper = tmp_path / "brief.yaml"
    wrapper.write_text("source: brief.csv\nencoding: cp1252\n", encoding="utf-8")
    check = invoke("validate", wrapper)
    assert check.exit_code == 0, check.output
    run = invoke("run", wrapper, "--mock", *FAST)
    assert run.exit_code == 0, run.output
    assert sent_prompts(wrapper)["kite"] == ("crème brûlée over the dunes", "queued")


def test_a_wrong_encoding_names_the_byte(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "brief.csv").write_bytes("id;prompt\r\nkite;ünder\r\n".encode("cp1252"))
    (tmp_path / "brief.yaml").write_text("source: brief.csv\nencoding: ascii\n")
    result = invoke("validate", "brief.yaml")
    assert result.exit_code == 2, result.output
    assert "brief.csv:2: prompt: byte 0xFC is not ascii (the encoding: setting)" in result.stderr


def test_header_row_overrides_a_notes_table_that_names_the_columns(
    tmp_path: Path, invoke: Invoke
) -> None:
    # A legend above the table names "prompt" too: only header_row: can tell.
    legend = [["column", "meaning"], ["prompt", "what to film"], ["seconds", "4, 8 or 12"]]
    titled_workbook(tmp_path / "brief.xlsx", [*legend, [], HEADER, *BRIEF])
    wrapper = tmp_path / "brief.yaml"
    wrapper.write_text("source: brief.xlsx\nsheet: brief\nheader_row: 7\n", encoding="utf-8")
    check = invoke("validate", wrapper)
    assert check.exit_code == 0, check.output
    assert "brief.xlsx: skipped 6 rows above the header (row 7)" in check.stdout
    assert_sent_whole(invoke, wrapper)


def test_delimiter_override(tmp_path: Path, invoke: Invoke) -> None:
    rows = ["|".join(HEADER)] + ["|".join(str(cell) for cell in row) for row in BRIEF]
    (tmp_path / "brief.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    guessed = invoke("validate", "brief.txt")
    assert guessed.exit_code == 2, "a pipe is not guessed"
    wrapper = tmp_path / "brief.yaml"
    wrapper.write_text("source: brief.txt\ndelimiter: pipe\n", encoding="utf-8")
    assert invoke("validate", wrapper).exit_code == 0
    assert_sent_whole(invoke, wrapper)


def test_a_template_names_the_header(tmp_path: Path, invoke: Invoke) -> None:
    lines = [TITLE, "", "id\tsubject\tplace", "kite\ta red kite\tthe dunes"]
    (tmp_path / "brief.tsv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    wrapper = tmp_path / "brief.yaml"
    wrapper.write_text(
        "source: brief.tsv\nprompt_template: '{subject} over {place}, {light}'\n"
        "defaults: {light: at dawn}\n",
        encoding="utf-8",
    )
    check = invoke("validate", wrapper)
    assert check.exit_code == 0, check.output
    assert "brief.tsv: skipped 2 rows above the header (row 3)" in check.stdout
    run = invoke("run", wrapper, "--mock", *FAST)
    assert run.exit_code == 0, run.output
    assert sent_prompts(wrapper) == {"kite": ("a red kite over the dunes, at dawn", "queued")}


def test_a_wrong_sheet_lists_the_sheets(tmp_path: Path, invoke: Invoke) -> None:
    manifest = titled_workbook(tmp_path / "brief.xlsx", [HEADER, *BRIEF], sheet="Briefs")
    for command in (("validate",), ("run", "--mock", *FAST)):
        result = invoke(*command[:1], manifest, "--sheet", "brief", *command[1:])
        assert result.exit_code == 2, result.output
        assert "brief.xlsx: no sheet named 'brief'; the sheets are: Notes, Briefs" in result.stderr
    assert not list(tmp_path.glob("*.results.csv")), "nothing sent"
    assert invoke("validate", manifest, "--sheet", "briefs").exit_code == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("header_row: 0\n", "brief.yaml:2: header_row: '0' is not a row number from 1"),
        ("header_row: 40\n", "brief.xlsx: header_row: 40, but the sheet has fewer rows"),
        ("delimiter: ab\n", "brief.yaml:2: delimiter: 'ab' is not one character"),
        ("delimiter: ';'\n", "brief.yaml:2: delimiter: applies to a CSV or TSV source:"),
        ("encoding: klingon\n", "brief.yaml:2: encoding: unknown encoding 'klingon'"),
    ],
)
def test_bad_layout_settings_are_refused(
    tmp_path: Path, invoke: Invoke, settings: str, message: str
) -> None:
    titled_workbook(tmp_path / "brief.xlsx", [HEADER, *BRIEF])
    wrapper = tmp_path / "brief.yaml"
    wrapper.write_text(f"source: brief.xlsx\n{settings}sheet: Brief\n", encoding="utf-8")
    result = invoke("run", wrapper, "--mock", *FAST)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.results.csv")), "nothing sent"
