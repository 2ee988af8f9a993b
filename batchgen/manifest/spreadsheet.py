"""Rows of a spreadsheet manifest (CSV, TSV or .xlsx): picks the reader by suffix and
checks the header (blank, duplicate and header-less columns)."""

from __future__ import annotations

from pathlib import Path

from batchgen.manifest.delimited import DELIMITED_SUFFIXES, read_delimited
from batchgen.manifest.header import Header, find_header
from batchgen.manifest.ods import ODS_SUFFIXES, read_ods
from batchgen.manifest.table import Builder, ManifestRow, Table, Unreadable, clean, column_letter
from batchgen.manifest.workbook import WORKBOOK_SUFFIXES, read_workbook


def load_spreadsheet(
    path: Path, sheet: str | None, builder: Builder, source: str
) -> list[ManifestRow]:
    """The rows of a CSV, TSV or .xlsx file; an unreadable file is one problem."""
    suffix = path.suffix.lower()
    try:
        if suffix in DELIMITED_SUFFIXES:
            table = read_delimited(path, source, builder)
        elif suffix in WORKBOOK_SUFFIXES:
            table = read_workbook(path, sheet, source, builder)
        elif suffix in ODS_SUFFIXES:
            table = read_ods(path, sheet, source, builder)
        else:
            raise Unreadable(
                f"unsupported file type {path.suffix or '(none)'!r}: use .csv, .tsv, .txt, "
                ".xlsx, .ods or .yaml (save an old .xls workbook as .xlsx)"
            )
    except Unreadable as exc:
        builder.problem(source, exc.row, exc.column, str(exc))
        return []
    return _table_rows(table, builder)


def _table_rows(table: Table, builder: Builder) -> list[ManifestRow]:
    """Rows of a table below its header, checking the header; shared by every reader."""
    header = find_header(table, builder)
    if header is None:
        return []
    names = _header_names(table.source, header, builder)
    every_cell_named = None not in names
    rows: list[ManifestRow] = []
    for number, cells in header.records:
        if every_cell_named and len(cells) <= len(names):
            # the usual row (no cell beyond a header): one comprehension, for 100,000 rows
            texts = map(clean, cells)
            values = {name: text for name, text in zip(names, texts, strict=False) if text and name}
        else:
            values = _values_reporting_unnamed(table.source, number, cells, names, builder)
        row = builder.row(table.source, number, values)
        if row is not None:
            rows.append(row)
    return rows


def _values_reporting_unnamed(
    source: str, number: int, cells: list[str], names: list[str | None], builder: Builder
) -> dict[str, str]:
    """A row's values by column name; a value in a column without a header is a problem."""
    values: dict[str, str] = {}
    for index, cell in enumerate(cells):
        text = clean(cell)
        if not text:
            continue
        name = names[index] if index < len(names) else None
        if name is None:
            letter = column_letter(index + 1)
            builder.problem(source, number, None, f"column {letter} has a value but no header")
        elif name:  # "" marks a duplicate column, already reported once
            values[name] = text
    return values


def _header_names(source: str, header: Header, builder: Builder) -> list[str | None]:
    """Canonical name per column: None where the header is blank, "" for a duplicate."""
    names: list[str | None] = []
    first_letter: dict[str, str] = {}
    for index, cell in enumerate(header.cells):
        name = builder.name(cell) if clean(cell) else None
        names.append(name)
        if name is None:
            continue
        letter = column_letter(index + 1)
        if name in first_letter:
            builder.problem(
                source,
                header.number,
                name,
                f"duplicate column: columns {first_letter[name]} and {letter} both mean {name!r}",
            )
            names[index] = ""
        else:
            first_letter[name] = letter
            builder.columns[name] = None
    return names
