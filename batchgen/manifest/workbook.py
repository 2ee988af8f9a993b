"""Reading an .xlsx worksheet into a :class:`Table`: typed cells as text, Excel error
values and formulas without a saved value reported by cell."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchgen.manifest.table import (
    Builder,
    Table,
    Unreadable,
    cell_text,
    column_letter,
    fold_header,
)
from batchgen.manifest.text import read_bytes

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


class _CellError(str):
    """An Excel error value such as ``#DIV/0!``: never sent, always reported."""


def read_workbook(path: Path, sheet: str | None, source: str, builder: Builder) -> Table:
    """A worksheet (``sheet`` or the first) as a :class:`Table` of cell texts."""
    formulas: list[tuple[int, int]] = []
    grid = _sheet_values(path, sheet, data_only=False, formulas=formulas)
    if formulas:
        # Only formula cells need the cached values; most sheets have none, so one pass.
        grid = _sheet_values(path, sheet, data_only=True, formulas=[])
    for row, col in formulas:
        if _grid_value(grid, row, col) is None:
            builder.problem(
                source,
                row,
                None,
                f"cell {column_letter(col)}{row} is a formula with no saved value: "
                "open and save the file in Excel so the result is stored",
            )
    if not grid:
        raise Unreadable(f"the sheet {sheet!r} is empty" if sheet else "the first sheet is empty")
    records = (
        (number, _workbook_texts(cells, number, source, builder))
        for number, cells in enumerate(grid[1:], start=2)
    )
    header = _workbook_texts(grid[0], 1, source, builder)
    return Table(source=source, header=header, records=records)


def _grid_value(grid: list[list[object]], row: int, col: int) -> object:
    cells = grid[row - 1] if row <= len(grid) else []
    return cells[col - 1] if col <= len(cells) else None


def _workbook_texts(cells: list[object], number: int, source: str, builder: Builder) -> list[str]:
    texts = []
    for col, value in enumerate(cells, start=1):
        if isinstance(value, _CellError):
            where = f"{column_letter(col)}{number}"
            builder.problem(source, number, None, f"cell {where} holds the Excel error {value}")
            value = None
        texts.append(cell_text(value))
    return texts


def _sheet_values(
    path: Path, sheet: str | None, *, data_only: bool, formulas: list[tuple[int, int]]
) -> list[list[object]]:
    """Every row of the sheet as values; formula cells' positions are added to ``formulas``."""
    if not path.is_file():
        read_bytes(path)  # raises the same messages as for CSV
    import openpyxl  # here: slow to import (numpy with it), and a CSV manifest never needs it

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=data_only)
        try:
            worksheet = _pick_sheet(workbook, sheet)
            worksheet.reset_dimensions()  # some writers store wrong dimensions; read every row
            return [
                _row_values(number, cells, formulas)
                for number, cells in enumerate(worksheet.iter_rows(), start=1)
            ]
        finally:
            workbook.close()
    except Unreadable:
        raise
    except Exception as exc:  # a damaged file can fail in zipfile, XML, KeyError, ValueError…
        raise Unreadable(
            f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ) from None


def _pick_sheet(workbook: Any, sheet: str | None) -> Any:
    if sheet is None:
        return workbook.worksheets[0]
    return workbook[pick_sheet_name(list(workbook.sheetnames), sheet)]


def pick_sheet_name(names: list[str], sheet: str) -> str:
    """The sheet ``sheet`` names: exactly, else ignoring case and surrounding spaces (people
    type ``--sheet briefs`` for "Briefs"); a wrong name lists the sheets there are."""
    if sheet in names:
        return sheet
    # Excel and LibreOffice refuse two sheet names that differ only by case: one match at most.
    for name in names:
        if fold_header(name) == fold_header(sheet):
            return name
    raise Unreadable(f"no sheet named {sheet!r}; the sheets are: {', '.join(names)}")


def _row_values(number: int, cells: Iterable[Any], formulas: list[tuple[int, int]]) -> list[object]:
    values: list[object] = []
    for col, cell in enumerate(cells, start=1):
        kind = getattr(cell, "data_type", None)
        if kind == "f":
            formulas.append((number, col))
        values.append(_CellError(cell.value) if kind == "e" else cell.value)
    return values
