"""OpenDocument spreadsheets (.ods) read like .xlsx, through the real CLI.

The files are written with odfpy, the library LibreOffice's own format is defined by and
pandas reads it with: cells typed as LibreOffice types them (float, boolean, string), merged
cells as covered cells, and the million repeated empty rows LibreOffice stores after the
last row. Where LibreOffice is installed, one more test has it convert a workbook itself.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P

from batchgen.mock import RunningMock
from tests.helpers import FAST, Invoke, results

Cell = str | float | bool | None


@dataclass(frozen=True)
class FailedFormula:
    """A formula cell whose result is an error, stored as LibreOffice stores it."""

    formula: str
    shown: str


@dataclass(frozen=True)
class Merged:
    """A cell hidden under a merged cell to its left (a covered cell)."""


def _cell(value: Cell | FailedFormula | Merged) -> TableCell | CoveredTableCell:
    if isinstance(value, Merged):
        return CoveredTableCell()
    if value is None:
        return TableCell()
    if isinstance(value, FailedFormula):
        cell = TableCell(formula=value.formula, valuetype="string", stringvalue="")
        text = value.shown
    elif isinstance(value, bool):
        cell = TableCell(valuetype="boolean", booleanvalue=str(value).lower())
        text = str(value).upper()
    elif isinstance(value, float):
        cell = TableCell(valuetype="float", value=value)
        text = str(value)
    else:
        cell = TableCell(valuetype="string")
        text = value
    cell.addElement(P(text=text))
    return cell


def write_ods(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> Path:
    """An .ods file with one sheet per entry; each row a list of cells (None: empty)."""
    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for cells in rows:
            row = TableRow()
            for value in cells:
                assert isinstance(value, str | float | bool | FailedFormula | Merged | None)
                row.addElement(_cell(value))
            table.addElement(row)
        # LibreOffice ends every sheet with its remaining empty rows, as one repeated row.
        blank = TableRow(numberrowsrepeated=1_048_000)
        blank.addElement(TableCell(numbercolumnsrepeated=1024))
        table.addElement(blank)
        document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


SHOTS = [
    ["Prompt", "Seconds", "id", "Size", "notes", Merged()],
    [],  # a blank row in the middle keeps the row numbers below it
    ["a lighthouse at dawn", 8.0, "007", "720x1280", "spans two columns", Merged()],
    ["a fox in snow", 4.0, "fox", "720x1280", True, None],
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_validate_reads_typed_cells_with_the_sheet_row_numbers(
    tmp_path: Path, invoke: Invoke
) -> None:
    """Numbers typed as numbers (8.0 is 8), text ids kept, a bad row named by its row."""
    bad = ["a cat", 5.0, "cat", "720x1280"]
    path = write_ods(tmp_path / "shots.ods", {"Shots": [*SHOTS, [], bad]})
    result = invoke("validate", path.name)
    assert result.exit_code == 2, result.output
    assert "shots.ods:6: seconds: '5' is not allowed" in result.output
    assert "Traceback" not in result.output
    fixed = write_ods(tmp_path / "fixed.ods", {"Shots": SHOTS})
    assert invoke("validate", fixed.name).exit_code == 0


@pytest.mark.timeout(60)
def test_run_sends_the_typed_values(tmp_path: Path, invoke: Invoke, mock_api: RunningMock) -> None:
    path = write_ods(tmp_path / "shots.ods", {"Shots": SHOTS})
    result = invoke("run", path.name, "--base-url", mock_api.base_url, *FAST)
    assert result.exit_code == 0, result.output
    sent = {job["_fields"]["prompt"]: job["_fields"] for job in mock_api.state.jobs.values()}
    assert {prompt: fields["seconds"] for prompt, fields in sent.items()} == {
        "a lighthouse at dawn": "8",
        "a fox in snow": "4",
    }
    rows = results(path)
    assert sorted(rows) == ["007", "fox"]  # the id column is the key, "007" kept as text
    assert sorted(row["row"] for row in rows.values()) == ["3", "4"]


@pytest.mark.timeout(60)
def test_run_mock_on_the_named_sheet(tmp_path: Path, invoke: Invoke) -> None:
    """``--sheet`` picks the sheet, ignoring case, as for .xlsx."""
    path = write_ods(tmp_path / "m.ods", {"Notes": [["read me"]], "Shots": SHOTS})
    result = invoke("run", path.name, "--sheet", "shots", "--mock", *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(results(path)) == ["007", "fox"]


def test_a_wrong_sheet_lists_the_sheets(tmp_path: Path, invoke: Invoke) -> None:
    path = write_ods(tmp_path / "m.ods", {"Notes": [["read me"]], "Shots": SHOTS})
    result = invoke("run", path.name, "--sheet", "Shot", "--mock", *FAST)
    assert result.exit_code == 2
    assert "m.ods: no sheet named 'Shot'; the sheets are: Notes, Shots" in result.output
    assert not (tmp_path / "m.results.csv").exists()


def test_the_first_sheet_by_default(tmp_path: Path, invoke: Invoke) -> None:
    path = write_ods(tmp_path / "m.ods", {"Shots": SHOTS, "Old": [["Promt"], ["x"]]})
    assert invoke("validate", path.name).exit_code == 0


def test_a_failed_formula_is_reported_by_cell(tmp_path: Path, invoke: Invoke) -> None:
    rows = [SHOTS[0], ["a cat", FailedFormula("of:=1/0", "#DIV/0!"), "cat", "720x1280"]]
    path = write_ods(tmp_path / "m.ods", {"Shots": rows})
    result = invoke("run", path.name, "--mock", *FAST)
    assert result.exit_code == 2
    assert "m.ods:2: cell B2 holds the error #DIV/0!" in result.output
    assert not (tmp_path / "m.results.csv").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"prompt\na cat\n", "m.ods: is not a readable .ods spreadsheet (BadZipFile"),
        (b"", "m.ods: is not a readable .ods spreadsheet"),
        (None, "m.ods: is an .xlsx workbook, not .ods: name it .xlsx"),
    ],
)
def test_unreadable_ods_is_one_clear_message(
    tmp_path: Path, invoke: Invoke, content: bytes | None, message: str
) -> None:
    if content is None:
        openpyxl.Workbook().save(tmp_path / "m.ods")  # an .xlsx under the wrong name
    else:
        (tmp_path / "m.ods").write_bytes(content)
    result = invoke("validate", "m.ods")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_title_above_the_header_is_skipped_as_for_xlsx(tmp_path: Path, invoke: Invoke) -> None:
    title = ["Spring campaign — video brief", Merged(), Merged()]
    rows: list[list[object]] = [title, [], ["Prompt", "Seconds", "id"], ["a", 8.0, "a"]]
    rows.append(["b", 5.0, "b"])
    write_ods(tmp_path / "m.ods", {"Brief": rows})
    result = invoke("validate", "m.ods")
    assert result.exit_code == 2
    assert "m.ods:5: seconds: '5' is not allowed" in result.output


def test_an_empty_sheet(tmp_path: Path, invoke: Invoke) -> None:
    write_ods(tmp_path / "m.ods", {"Shots": []})
    result = invoke("validate", "m.ods")
    assert result.exit_code == 2
    assert "m.ods: the first sheet is empty" in result.output


def test_yaml_source_may_be_an_ods(tmp_path: Path, invoke: Invoke) -> None:
    write_ods(tmp_path / "shots.ods", {"Notes": [["read me"]], "Shots": SHOTS})
    (tmp_path / "m.yaml").write_text("source: shots.ods\nsheet: Shots\n", encoding="utf-8")
    result = invoke("validate", "m.yaml")
    assert result.exit_code == 0, result.output


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_a_workbook_libreoffice_saved_as_ods(tmp_path: Path, invoke: Invoke) -> None:
    """LibreOffice itself converts an .xlsx; the .ods reads as the .xlsx did."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for cells in [["Prompt", "Seconds", "id"], [], ["a lighthouse", 8, "007"], ["a fox", 5, "f"]]:
        sheet.append(cells)
    workbook.save(tmp_path / "m.xlsx")
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "ods", "--outdir", str(tmp_path), "m.xlsx"],
        cwd=tmp_path,
        check=True,
        timeout=100,
        capture_output=True,
    )
    as_xlsx, as_ods = invoke("validate", "m.xlsx"), invoke("validate", "m.ods")
    assert as_ods.exit_code == as_xlsx.exit_code == 2
    assert "m.ods:4: seconds: '5' is not allowed" in as_ods.output
    assert as_ods.output.replace("m.ods", "m.xlsx") == as_xlsx.output
