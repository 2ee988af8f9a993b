"""Reading a CSV or TSV manifest into a :class:`Table`, with messages for broken quoting
and undecodable bytes that name the row and column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from openpyxl.utils import get_column_letter

from batchgen.manifest.table import Builder, Table, Unreadable, fold_header
from batchgen.manifest.text import BadBytes, decode_text, is_escaped_byte, read_bytes

DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")


def read_delimited(path: Path, source: str, builder: Builder) -> Table:
    """A CSV or TSV file as a :class:`Table`; a broken row is a problem, not the end."""
    try:
        text = decode_text(read_bytes(path))
    except BadBytes as exc:
        row, column = _locate_in_csv(exc.text, exc.index, _delimiter(path, exc.text))
        raise Unreadable(str(exc), row=row, column=column) from None
    delimiter = _delimiter(path, text)
    # No cell can be longer than the file; the csv module's default cap (131,072 characters)
    # would otherwise hide an over-long prompt behind "field larger than field limit".
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise Unreadable(_csv_message(exc), row=1) from None
    return Table(source=source, header=header, records=_csv_records(reader, source, builder))


def _csv_records(
    reader: Iterator[list[str]], source: str, builder: Builder
) -> Iterator[tuple[int, list[str]]]:
    # Counting records, not lines, gives spreadsheet rows: a quoted cell spanning lines is one.
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):
            yield number, cells
    except csv.Error as exc:
        builder.problem(source, number + 1, None, _csv_message(exc))


def _csv_message(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return "unbalanced quotes: a quoted cell starting in this row is never closed"
    if "expected after" in str(exc):
        return (
            'a quote (") inside a quoted cell must be doubled (""); the cell must end right '
            "after its closing quote"
        )
    return f"not valid CSV: {exc}"


def _delimiter(path: Path, text: str) -> str:
    # Excel's "Unicode Text" export is tab-separated, whatever the file is later renamed to.
    header = text.split("\n", 1)[0]
    if path.suffix.lower() == ".tsv" or ("\t" in header and "," not in header):
        return "\t"
    return ","


def _locate_in_csv(text: str, index: int, delimiter: str) -> tuple[int, str | None]:
    """The row (header = 1) and column of ``text[index]``, for a message."""
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    header: list[str] = []
    try:
        for number, cells in enumerate(csv.reader(lines(), delimiter=delimiter), start=1):
            header = header or cells
            if consumed <= index:
                continue
            for position, cell in enumerate(cells):
                if any(is_escaped_byte(char) for char in cell):
                    name = header[position] if position < len(header) and number > 1 else ""
                    if name and not any(is_escaped_byte(char) for char in name):
                        return number, fold_header(name)
                    return number, f"column {get_column_letter(position + 1)}"
            return number, None
    except csv.Error:
        pass
    return text.count("\n", 0, index) + 1, None
