"""Finding a spreadsheet's header row: the first row that holds the prompt column (after
``columns:`` renames) or every column a ``prompt_template:`` takes from the rows. Rows above
it (a title, merged cells, notes) are skipped and noted for ``validate``; when no row
qualifies, the first non-empty row is the header, so a misspelt ``Promt`` is reported as
the near miss it is. ``header_row:`` in a YAML wrapper overrides all of this."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from batchgen.manifest.table import Builder, Table, clean

#: How far down a header is looked for; beyond it, a sheet needs ``header_row:``. A bound,
#: so that a sheet without a recognisable header is not held in memory while searching.
SCAN_ROWS = 100

PROMPT_COLUMN = "prompt"

Records = Iterator[tuple[int, list[str]]]


@dataclass
class Header:
    """The header row found: its row number, its cells and the rows below it."""

    number: int
    cells: list[str]
    records: Records


def is_header(cells: list[str], builder: Builder) -> bool:
    """Whether a row holds the prompt column, or every column the template takes."""
    names = {builder.name(cell) for cell in cells if clean(cell)}
    template = builder.layout.template_columns
    return PROMPT_COLUMN in names or bool(template and template <= names)


def find_header(table: Table, builder: Builder) -> Header | None:
    """The header of ``table``, or None (a problem recorded) when there is none."""
    rows: Records = itertools.chain([(1, table.header)], table.records)
    wanted = builder.layout.header_row
    header = _numbered(rows, wanted) if wanted else _searched(rows, builder)
    if header is None:
        where = f"header_row: {wanted}, but the sheet has fewer rows" if wanted else ""
        builder.problem(table.source, None, None, where or "every row is empty: no header row")
        return None
    if not any(clean(cell) for cell in header.cells):
        message = f"the header row (row {header.number}) is empty"
        builder.problem(table.source, header.number, None, message)
        return None
    if header.number > 1:
        above = header.number - 1
        rows_word = "row" if above == 1 else "rows"
        builder.notes.append(
            f"{table.source}: skipped {above} {rows_word} above the header (row {header.number})"
        )
    return header


def _numbered(rows: Records, wanted: int) -> Header | None:
    for number, cells in rows:
        if number == wanted:
            return Header(number, cells, rows)
        if number > wanted:  # a reader that skips rows: the wanted one is blank
            return Header(wanted, [], itertools.chain([(number, cells)], rows))
    return None


def _searched(rows: Records, builder: Builder) -> Header | None:
    scanned: list[tuple[int, list[str]]] = []
    for number, cells in rows:
        if is_header(cells, builder):
            return Header(number, cells, rows)
        scanned.append((number, cells))
        if len(scanned) >= SCAN_ROWS:
            break
    for index, (number, cells) in enumerate(scanned):
        if any(clean(cell) for cell in cells):
            return Header(number, cells, itertools.chain(scanned[index + 1 :], rows))
    return None
