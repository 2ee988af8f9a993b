"""Reading a CSV or TSV manifest into a :class:`Table`, with messages for broken quoting
and undecodable bytes that name the row and column."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from batchgen.manifest.header import SCAN_ROWS, is_header
from batchgen.manifest.table import Builder, Table, Unreadable, column_letter, fold_header
from batchgen.manifest.text import BadBytes, decode_text, is_escaped_byte, read_bytes

DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")


def read_delimited(path: Path, source: str, builder: Builder) -> Table:
    """A CSV or TSV file as a :class:`Table`; a broken row is a problem, not the end."""
    try:
        text = decode_text(read_bytes(path), builder.layout.encoding)
    except BadBytes as exc:
        delimiter = _delimiter(path, exc.text, builder)
        row, column = _locate_in_csv(exc.text, exc.index, delimiter, builder)
        raise Unreadable(str(exc), row=row, column=column) from None
    delimiter = _delimiter(path, text, builder)
    # No cell can be longer than the file; the csv module's default cap (131,072 characters)
    # would otherwise hide an over-long prompt behind "field larger than field limit".
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    reader = csv.reader(_lines(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise Unreadable(_csv_message(exc), row=1) from None
    return Table(source=source, header=header, records=_csv_records(reader, source, builder))


#: A line and its ending (``\r\n``, ``\r`` or ``\n``), or the last line without one.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` as ``io.StringIO(text, newline="")`` gives them, without its
    copy of the whole text at four bytes a character (45 MB for an 11 MB manifest)."""
    return (match.group() for match in _LINE.finditer(text))


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


def _delimiter(path: Path, text: str, builder: Builder) -> str:
    """``delimiter:`` if set, else the one of comma, semicolon and tab that finds the header
    (or else the first non-empty row) with the most cells. Excel writes semicolons where the
    comma is the decimal mark, and "Unicode Text" is tab-separated, whatever the file is
    later renamed to. Ties go to the suffix's own: tab for .tsv, else comma."""
    if builder.layout.delimiter is not None:
        return builder.layout.delimiter
    preferred = "\t" if path.suffix.lower() == ".tsv" else ","
    candidates = (preferred, *(d for d in DELIMITERS if d != preferred))
    # The head of the file is enough to find a header in; max() keeps the first of equals.
    head = text[:_HEAD_CHARACTERS]
    return max(candidates, key=lambda delimiter: _header_score(head, delimiter, builder))


DELIMITERS = (",", ";", "\t")
_HEAD_CHARACTERS = 1_000_000


def _header_score(head: str, delimiter: str, builder: Builder) -> tuple[bool, int, int]:
    """How well ``delimiter`` reads a header: found by name, how many cells, how early."""
    first: tuple[bool, int, int] | None = None
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
    try:
        for number, cells in enumerate(itertools.islice(reader, SCAN_ROWS), start=1):
            if is_header(cells, builder):
                return True, len(cells), -number
            # A cell of delimiters only is a blank row read with the wrong delimiter.
            if first is None and any(cell.strip(" ,;\t") for cell in cells):
                first = False, len(cells), -number
    except csv.Error:
        pass  # broken quoting is reported by the real read, with its row
    return first or (False, 0, 0)


def _locate_in_csv(
    text: str, index: int, delimiter: str, builder: Builder
) -> tuple[int, str | None]:
    """The row and column (by the header's name where it has one) of ``text[index]``."""
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    header: list[str] = []
    header_number = 0
    try:
        for number, cells in enumerate(csv.reader(lines(), delimiter=delimiter), start=1):
            if _better_header(header, number, cells, builder):
                header, header_number = cells, number
            if consumed <= index:
                continue
            for position, cell in enumerate(cells):
                if any(is_escaped_byte(char) for char in cell):
                    below = number > header_number
                    name = header[position] if position < len(header) and below else ""
                    if name and not any(is_escaped_byte(char) for char in name):
                        return number, fold_header(name)
                    return number, f"column {column_letter(position + 1)}"
            return number, None
    except csv.Error:
        pass
    return text.count("\n", 0, index) + 1, None


def _better_header(header: list[str], number: int, cells: list[str], builder: Builder) -> bool:
    """Whether row ``number`` is the header rather than ``header`` (the best so far), by the
    rules of :mod:`batchgen.manifest.header`, for naming a cell's column in a message."""
    if builder.layout.header_row is not None:
        return number == builder.layout.header_row
    if not any(cell.strip() for cell in header):
        return True
    return is_header(cells, builder) and not is_header(header, builder)
