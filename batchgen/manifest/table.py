"""What every manifest reader shares: the :class:`ManifestRow` it yields, the
:class:`Table` a spreadsheet becomes, the :class:`Builder` collecting problems and column
names, and how headers, cells and file names are shown."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from batchgen.errors import Problem


@dataclass(frozen=True, slots=True)  # slots: a 100,000-row manifest holds 100,000 of them
class ManifestRow:
    """One non-empty row, as the user wrote it, under canonical column names."""

    number: int  # the spreadsheet's own row number; for YAML rows, the line where it starts
    source: str  # the file to name in messages
    values: dict[str, str]  # canonical column -> text; blank cells absent; defaults filled in


class Unreadable(Exception):
    """A file cannot be read at all; the message says why, for a :class:`Problem`."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass
class Table:
    """A spreadsheet as text: its first row (row 1), then ``(row number, cells)`` for the
    others; which row is the header is decided later (:mod:`batchgen.manifest.header`)."""

    source: str
    header: list[str]
    records: Iterable[tuple[int, list[str]]]


@dataclass(frozen=True)
class Layout:
    """Where the table is in a spreadsheet: a YAML wrapper's ``header_row:``, ``delimiter:``
    and ``encoding:``, and the columns a ``prompt_template:`` needs from each row."""

    header_row: int | None = None  # None: found (manifest/header.py)
    delimiter: str | None = None  # None: detected from the header line
    encoding: str | None = None  # None: BOM, UTF-8, else GB18030 (manifest/text.py)
    template_columns: frozenset[str] = frozenset()  # a row holding them all is a header


@dataclass
class Builder:
    """What every reader shares: problems so far, column naming, defaults, column order."""

    problems: list[Problem] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    columns: dict[str, None] = field(default_factory=dict)  # an ordered set
    own: set[str] = field(default_factory=set)  # passthrough: names
    layout: Layout = field(default_factory=Layout)
    notes: list[str] = field(default_factory=list)  # for validate: what reading decided

    def problem(self, file: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(file, row, column, message))

    def name(self, header: str) -> str:
        folded = fold_header(header)
        return self.renames.get(folded, folded)

    def row(self, source: str, number: int, values: dict[str, str]) -> ManifestRow | None:
        """The finished row, or None for a fully empty one (Excel leaves those at the end)."""
        if not values:
            return None
        if not values.keys() <= self.columns.keys():  # a spreadsheet's are all in its header
            self.columns.update(dict.fromkeys(values))
        for column, value in self.defaults.items():
            values.setdefault(column, value)
        return ManifestRow(number=number, source=source, values=values)


def display_name(path: Path) -> str:
    """``path`` as messages show it: relative to the current folder when it is inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def column_letter(number: int) -> str:
    """The spreadsheet letters of 1-based column ``number``: 1 -> A, 26 -> Z, 27 -> AA.

    openpyxl has this too, but importing it (and numpy with it) costs a CSV manifest a
    fifth of a second it never needs.
    """
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def fold_header(header: str) -> str:
    """A header as a column name: case and surrounding or repeated spaces do not matter."""
    return " ".join(header.split()).lower()


def cell_text(value: object) -> str:
    """Text for a typed value from a workbook or YAML: 8 and 8.0 -> "8", True -> "true"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        midnight = value.time() == dt.time(0)
        return value.date().isoformat() if midnight and value.tzinfo is None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return clean(str(value))


def clean(text: str) -> str:
    """A cell's text as a prompt keeps it: plain newlines, no surrounding whitespace."""
    if "\r" in text:
        # Excel and Windows editors write CRLF inside quoted cells; prompts keep plain newlines.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()
