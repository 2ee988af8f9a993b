"""Reading an OpenDocument spreadsheet (.ods: LibreOffice's own format, and what Google
Sheets offers for download) into the same :class:`Table` an .xlsx sheet becomes.

pandas reads the file through odfpy: typed cells come back as numbers, booleans and dates
(8.0 as 8), blank rows in the middle keep their place so row numbers match what the user
sees, and trailing blank rows are dropped. Office suites always store a formula's result,
so, unlike .xlsx, there is no "formula with no saved value" to report.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from batchgen.manifest.table import Builder, Table, Unreadable, cell_text, column_letter
from batchgen.manifest.text import read_bytes
from batchgen.manifest.workbook import pick_sheet_name

ODS_SUFFIXES = (".ods",)

#: The texts LibreOffice shows for a formula that failed; the file stores them as strings.
_ERROR_TEXT = re.compile(r"#(DIV/0!|N/A|NAME\?|NULL!|NUM!|REF!|VALUE!)|Err:\d{3}")


def read_ods(path: Path, sheet: str | None, source: str, builder: Builder) -> Table:
    """A sheet of an .ods file (``sheet`` or the first) as a :class:`Table` of cell texts."""
    grid = _sheet_grid(path, sheet)
    if not grid:
        raise Unreadable(f"the sheet {sheet!r} is empty" if sheet else "the first sheet is empty")
    records = (
        (number, _texts(cells, number, source, builder))
        for number, cells in enumerate(grid[1:], start=2)
    )
    return Table(source=source, header=_texts(grid[0], 1, source, builder), records=records)


def _sheet_grid(path: Path, sheet: str | None) -> list[list[object]]:
    """Every row of the chosen sheet as typed values, empty cells as ``""``."""
    import pandas as pd  # here: slow to import, and `run` of a CSV manifest never needs it

    if not path.is_file():
        read_bytes(path)  # raises the same messages as for CSV
    try:
        with pd.ExcelFile(path, engine="odf") as book:
            names = [str(each) for each in book.sheet_names]
            name = names[0] if sheet is None else pick_sheet_name(names, sheet)
            # dtype=object and na_filter=False: "007" stays text and "NA" is not a gap.
            frame = pd.read_excel(book, sheet_name=name, header=None, dtype=object, na_filter=False)
    except Unreadable:
        raise
    except Exception as exc:  # a damaged file fails in zipfile, XML, KeyError, ValueError…
        if _is_xlsx(path):
            raise Unreadable("is an .xlsx workbook, not .ods: name it .xlsx") from None
        raise Unreadable(
            f"is not a readable .ods spreadsheet ({type(exc).__name__}: {exc})"
        ) from None
    rows: list[list[object]] = frame.to_numpy().tolist()
    return rows


def _is_xlsx(path: Path) -> bool:
    """Whether ``path`` is an Excel workbook saved under an .ods name."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _texts(cells: list[object], number: int, source: str, builder: Builder) -> list[str]:
    """Cell texts of one row; a failed formula's error text is reported, never sent."""
    texts = []
    for col, value in enumerate(cells, start=1):
        text = cell_text(value)
        if _ERROR_TEXT.fullmatch(text):
            where = f"{column_letter(col)}{number}"
            builder.problem(source, number, None, f"cell {where} holds the error {text}")
            text = ""
        texts.append(text)
    return texts
