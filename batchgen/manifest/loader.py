"""Loading manifests: the content team's spreadsheet (CSV, TSV, .xlsx) or a YAML file.

This module only reads: it turns every supported file into :class:`ManifestRow` objects
with canonical column names and the row numbers the user sees. Whether a row makes sense
for a provider is :mod:`batchgen.validate.rows`'s business.

Every problem found is collected and raised once, as a :class:`ManifestError`, so the user
can fix them all in one go.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import yaml
from openpyxl.utils import get_column_letter

from batchgen.errors import ManifestError, Problem
from batchgen.manifest.expand import TAKE_COLUMN, Expansion, ExpansionError, template_fields
from batchgen.manifest.fit import FitError, check_fit

DELIMITED_SUFFIXES = (".csv", ".tsv", ".txt")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
YAML_SUFFIXES = (".yaml", ".yml")
YAML_KEYS = (
    "base_url", "columns", "defaults", "image_fit", "matrix", "max_cost", "output", "pad_color",
    "passthrough", "profile", "prompt_template", "rows", "sheet", "source", "takes",
)  # fmt: skip
SCALAR_SETTINGS = (
    "base_url", "image_fit", "max_cost", "output", "pad_color", "profile", "prompt_template",
    "sheet", "source", "takes",
)  # fmt: skip

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class ManifestRow:
    """One non-empty row, as the user wrote it, under canonical column names."""

    number: int  # spreadsheet row (header = 1); for YAML rows, the line where the row starts
    source: str  # the file to name in messages
    values: dict[str, str]  # canonical column -> text; blank cells absent; defaults filled in


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: its rows plus the settings a YAML manifest may carry."""

    path: Path
    folder: Path
    rows: tuple[ManifestRow, ...]
    columns: tuple[str, ...]
    profile: str | None = None
    base_url: str | None = None
    output: Path | None = None
    max_cost: float | None = None
    image_fit: str | None = None  # cover, contain, stretch or none, for every row
    pad_color: str | None = None
    expansion: Expansion = field(default_factory=Expansion)
    own_columns: frozenset[str] = frozenset()  # passthrough: and columns: targets, never typos


class _Unreadable(Exception):
    """A file cannot be read at all; the message says why, for a :class:`Problem`."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


class _BadBytes(_Unreadable):
    """Bytes that are not text in the file's encoding. ``text`` is the file decoded as UTF-8
    with every undecodable byte kept as a lone surrogate; ``index`` is the first of them, so
    the reader can say in which row and cell it is."""

    def __init__(self, message: str, text: str, index: int) -> None:
        super().__init__(message)
        self.text = text
        self.index = index


@dataclass
class _Table:
    """A spreadsheet as text: the header row, then ``(row number, cells)`` for each row."""

    source: str
    header: list[str]
    records: Iterable[tuple[int, list[str]]]


@dataclass
class _Builder:
    """What every reader shares: problems so far, column naming, defaults, column order."""

    problems: list[Problem] = field(default_factory=list)
    renames: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    columns: dict[str, None] = field(default_factory=dict)  # an ordered set
    own: set[str] = field(default_factory=set)  # passthrough: names

    def problem(self, file: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(file, row, column, message))

    def name(self, header: str) -> str:
        folded = fold_header(header)
        return self.renames.get(folded, folded)

    def row(self, source: str, number: int, values: dict[str, str]) -> ManifestRow | None:
        """The finished row, or None for a fully empty one (Excel leaves those at the end)."""
        if not values:
            return None
        self.columns.update(dict.fromkeys(values))
        for column, value in self.defaults.items():
            values.setdefault(column, value)
        return ManifestRow(number=number, source=source, values=values)


def load_manifest(path: Path, *, sheet: str | None = None) -> Manifest:
    """Load a manifest file (.csv, .tsv, .txt, .xlsx, .yaml), raising :class:`ManifestError`.

    ``sheet`` picks a worksheet of an .xlsx file (for YAML, of its ``source:``); the first
    sheet is used otherwise.
    """
    builder = _Builder()
    suffix = path.suffix.lower()
    settings: dict[str, str] = {}
    matrix: dict[str, tuple[str, ...]] = {}
    if suffix in YAML_SUFFIXES:
        rows, settings, matrix = _load_yaml(path, sheet, builder)
    else:
        rows = _load_spreadsheet(path, sheet, builder, display_name(path))
    numbers = _numeric_settings(settings, display_name(path), builder)
    _check_expansion_settings(settings, display_name(path), builder)
    if builder.problems:
        raise ManifestError(builder.problems)
    folder = path.parent
    expansion = Expansion(settings.get("prompt_template"), matrix, int(numbers.get("takes", 1)))
    builder.columns.update(dict.fromkeys(builder.defaults))
    builder.columns.update(dict.fromkeys(expansion.columns))
    if any("takes" in row.values for row in rows):
        builder.columns[TAKE_COLUMN] = None  # a row's own takes: the results say which take
    output = settings.get("output")
    return Manifest(
        path=path,
        folder=folder,
        rows=tuple(rows),
        columns=tuple(builder.columns),
        profile=settings.get("profile"),
        base_url=settings.get("base_url"),
        output=None if output is None else folder / output,
        max_cost=numbers.get("max_cost"),
        image_fit=settings.get("image_fit"),
        pad_color=settings.get("pad_color"),
        expansion=expansion,
        own_columns=frozenset(builder.own | set(builder.renames.values())),
    )


def _check_expansion_settings(settings: Mapping[str, str], source: str, builder: _Builder) -> None:
    """A malformed ``prompt_template:`` or ``image_fit:`` is one problem, not one per row."""
    try:
        if "prompt_template" in settings:
            template_fields(settings["prompt_template"])
    except ExpansionError as exc:
        builder.problem(source, None, exc.column, exc.message)
    try:
        check_fit(settings.get("image_fit", "none"), settings.get("pad_color", "black"))
    except FitError as exc:
        builder.problem(source, None, "image_fit", str(exc))


def _numeric_settings(
    settings: Mapping[str, str], source: str, builder: _Builder
) -> dict[str, float]:
    """``max_cost:`` (a number of USD) and ``takes:`` (a whole number from 1), checked."""
    numbers: dict[str, float] = {}
    for key, whole in (("max_cost", False), ("takes", True)):
        if key not in settings:
            continue
        try:
            number = float(settings[key])
        except ValueError:
            number = -1.0
        if number < (1 if whole else 0) or (whole and number != int(number)) or number > 1e9:
            kind = "a whole number from 1" if whole else "a number of US dollars"
            builder.problem(source, None, key, f"{settings[key]!r} is not {kind}")
            continue
        numbers[key] = number
    return numbers


def display_name(path: Path) -> str:
    """``path`` as messages show it: relative to the current folder when it is inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
    return _clean(str(value))


def _clean(text: str) -> str:
    # Excel and Windows editors write CRLF inside quoted cells; prompts keep plain newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


# --- spreadsheets -------------------------------------------------------------------------


def _load_spreadsheet(
    path: Path, sheet: str | None, builder: _Builder, source: str
) -> list[ManifestRow]:
    suffix = path.suffix.lower()
    try:
        if suffix in DELIMITED_SUFFIXES:
            table = _read_delimited(path, source, builder)
        elif suffix in WORKBOOK_SUFFIXES:
            table = _read_workbook(path, sheet, source, builder)
        else:
            raise _Unreadable(
                f"unsupported file type {path.suffix or '(none)'!r}: use .csv, .tsv, .txt, "
                ".xlsx or .yaml (save an old .xls workbook as .xlsx)"
            )
    except _Unreadable as exc:
        builder.problem(source, exc.row, exc.column, str(exc))
        return []
    return _table_rows(table, builder)


def _table_rows(table: _Table, builder: _Builder) -> list[ManifestRow]:
    """Rows of a table, checking its header; shared by CSV, TSV and .xlsx."""
    if not any(_clean(header) for header in table.header):
        builder.problem(table.source, 1, None, "the header row (row 1) is empty")
        return []
    names = _header_names(table, builder)
    rows: list[ManifestRow] = []
    for number, cells in table.records:
        values: dict[str, str] = {}
        for index, cell in enumerate(cells):
            text = _clean(cell)
            if not text:
                continue
            name = names[index] if index < len(names) else None
            if name is None:
                letter = get_column_letter(index + 1)
                builder.problem(
                    table.source, number, None, f"column {letter} has a value but no header"
                )
            elif name:  # "" marks a duplicate column, already reported once
                values[name] = text
        row = builder.row(table.source, number, values)
        if row is not None:
            rows.append(row)
    return rows


def _header_names(table: _Table, builder: _Builder) -> list[str | None]:
    """Canonical name per column: None where the header is blank, "" for a duplicate."""
    names: list[str | None] = []
    first_letter: dict[str, str] = {}
    for index, header in enumerate(table.header):
        name = builder.name(header) if _clean(header) else None
        names.append(name)
        if name is None:
            continue
        letter = get_column_letter(index + 1)
        if name in first_letter:
            builder.problem(
                table.source,
                1,
                name,
                f"duplicate column: columns {first_letter[name]} and {letter} both mean {name!r}",
            )
            names[index] = ""
        else:
            first_letter[name] = letter
            builder.columns[name] = None
    return names


# --- CSV, TSV ------------------------------------------------------------------------------


def _read_delimited(path: Path, source: str, builder: _Builder) -> _Table:
    try:
        text = decode_text(_read_bytes(path))
    except _BadBytes as exc:
        row, column = _locate_in_csv(exc.text, exc.index, _delimiter(path, exc.text))
        raise _Unreadable(str(exc), row=row, column=column) from None
    delimiter = _delimiter(path, text)
    # No cell can be longer than the file; the csv module's default cap (131,072 characters)
    # would otherwise hide an over-long prompt behind "field larger than field limit".
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(len(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _Unreadable(_csv_message(exc), row=1) from None
    return _Table(source=source, header=header, records=_csv_records(reader, source, builder))


def _csv_records(
    reader: Iterator[list[str]], source: str, builder: _Builder
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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _Unreadable("file not found") from None
    except IsADirectoryError:
        raise _Unreadable("is a folder, not a file") from None
    except OSError as exc:
        raise _Unreadable(f"cannot read the file: {exc.strerror}") from None


def decode_text(data: bytes) -> str:
    """Text of a file: BOM (UTF-8, UTF-16) first, else strict UTF-8, else GB18030.

    GB18030 is what Excel writes as "CSV" on a Chinese-locale Windows; it is a superset of
    GBK and GB2312.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data, encoding)
    if data.startswith(b"PK\x03\x04"):
        raise _Unreadable("is a zip file (an Excel workbook?), not text: name it .xlsx")
    if b"\x00" in data:
        raise _Unreadable(
            "is binary, not text (it contains NUL bytes); if it is UTF-16 without a "
            "byte-order mark, save it as UTF-8"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _decode_legacy(data)
    return _checked(text)


#: A run of bytes outside ASCII, and a GB18030 character (two bytes, or four with digits).
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_GB_CHARACTER = re.compile(rb"[\x81-\xfe](?:[\x30-\x39][\x81-\xfe][\x30-\x39]|[\x40-\xfe])")


def _decode_legacy(data: bytes) -> str:
    """A file that is not UTF-8: GB18030 when it looks like Chinese text, else an error
    naming the first byte that is not UTF-8.

    GB18030 decodes almost any byte soup, so it is not a fallback to take on trust: a UTF-8
    file with a few rows pasted from a Windows-1252 file, or a whole Windows-1252 file,
    would come out as plausible-looking Chinese characters and be paid for as prompts.
    """
    escaped = data.decode("utf-8", errors="surrogateescape")
    index = next(i for i, char in enumerate(escaped) if _is_escaped_byte(char))
    byte = f"0x{ord(escaped[index]) - 0xDC00:02X}"
    utf8_runs = other_runs = 0
    for run in _HIGH_RUN.finditer(data):
        try:
            run.group().decode("utf-8")
            utf8_runs += 1
        except UnicodeDecodeError:
            other_runs += 1
    # Chinese text in GB18030 is valid UTF-8 only by chance, in a few short runs; a file
    # where most non-ASCII runs are UTF-8 is a UTF-8 file with some foreign bytes in it.
    if utf8_runs >= other_runs:
        raise _BadBytes(
            f"byte {byte} is not UTF-8, unlike the rest of the file: it mixes text encodings "
            "(rows pasted from another file?); retype this cell and save the file as CSV UTF-8",
            escaped,
            index,
        )
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is None or not _looks_like_gb18030(data):
        raise _BadBytes(
            f"byte {byte} is not UTF-8 (nor GB18030, as Excel writes on Chinese Windows): "
            "save the file as CSV UTF-8",
            escaped,
            index,
        )
    return text


def _looks_like_gb18030(data: bytes) -> bool:
    """Chinese characters in GB18030 have a trail byte above ASCII (the GB2312 area) but for
    rare ones; a Windows-1252 "é" or "è" before an ASCII letter makes an ASCII-trailed pair."""
    characters = _GB_CHARACTER.findall(data)
    ascii_trailed = sum(1 for char in characters if len(char) == 2 and char[1] < 0x80)
    return ascii_trailed * 10 <= len(characters)


def _is_escaped_byte(char: str) -> bool:
    return "\udc80" <= char <= "\udcff"


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
                if any(_is_escaped_byte(char) for char in cell):
                    name = header[position] if position < len(header) and number > 1 else ""
                    if name and not any(_is_escaped_byte(char) for char in name):
                        return number, fold_header(name)
                    return number, f"column {get_column_letter(position + 1)}"
            return number, None
    except csv.Error:
        pass
    return text.count("\n", 0, index) + 1, None


def _checked(text: str) -> str:
    if not text.strip():
        raise _Unreadable("the file is empty")
    if "\x00" in text:
        raise _Unreadable("is binary, not text (it contains NUL characters)")
    return text


def _decode(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise _Unreadable(
            f"is not readable text (it starts with a {encoding} byte-order mark, but is not "
            f"{encoding}); save it as CSV UTF-8"
        ) from None
    return _checked(text)


# --- .xlsx ---------------------------------------------------------------------------------


class _CellError(str):
    """An Excel error value such as ``#DIV/0!``: never sent, always reported."""


def _read_workbook(path: Path, sheet: str | None, source: str, builder: _Builder) -> _Table:
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
                f"cell {get_column_letter(col)}{row} is a formula with no saved value: "
                "open and save the file in Excel so the result is stored",
            )
    if not grid:
        raise _Unreadable(f"the sheet {sheet!r} is empty" if sheet else "the first sheet is empty")
    records = (
        (number, _workbook_texts(cells, number, source, builder))
        for number, cells in enumerate(grid[1:], start=2)
    )
    header = _workbook_texts(grid[0], 1, source, builder)
    return _Table(source=source, header=header, records=records)


def _grid_value(grid: list[list[object]], row: int, col: int) -> object:
    cells = grid[row - 1] if row <= len(grid) else []
    return cells[col - 1] if col <= len(cells) else None


def _workbook_texts(cells: list[object], number: int, source: str, builder: _Builder) -> list[str]:
    texts = []
    for col, value in enumerate(cells, start=1):
        if isinstance(value, _CellError):
            where = f"{get_column_letter(col)}{number}"
            builder.problem(source, number, None, f"cell {where} holds the Excel error {value}")
            value = None
        texts.append(cell_text(value))
    return texts


def _sheet_values(
    path: Path, sheet: str | None, *, data_only: bool, formulas: list[tuple[int, int]]
) -> list[list[object]]:
    """Every row of the sheet as values; formula cells' positions are added to ``formulas``."""
    if not path.is_file():
        _read_bytes(path)  # raises the same messages as for CSV
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
    except _Unreadable:
        raise
    except Exception as exc:  # a damaged file can fail in zipfile, XML, KeyError, ValueError…
        raise _Unreadable(
            f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ) from None


def _pick_sheet(workbook: Any, sheet: str | None) -> Any:
    names: list[str] = list(workbook.sheetnames)
    if sheet is None:
        return workbook.worksheets[0]
    if sheet in names:
        return workbook[sheet]
    raise _Unreadable(f"no sheet named {sheet!r}; the sheets are: {', '.join(names)}")


def _row_values(number: int, cells: Iterable[Any], formulas: list[tuple[int, int]]) -> list[object]:
    values: list[object] = []
    for col, cell in enumerate(cells, start=1):
        kind = getattr(cell, "data_type", None)
        if kind == "f":
            formulas.append((number, col))
        values.append(_CellError(cell.value) if kind == "e" else cell.value)
    return values


# --- YAML ----------------------------------------------------------------------------------


class _AliasFound(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases, so an alias bomb cannot expand at all."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasFound(self.peek_event().start_mark.line + 1)  # type: ignore[no-untyped-call]
        return super().compose_node(parent, index)


@dataclass
class _YamlFile:
    loader: _NoAliasLoader
    source: str
    builder: _Builder

    def problem(self, node: yaml.Node, message: str, column: str | None = None) -> None:
        self.builder.problem(self.source, _line(node), column, message)

    def construct(self, node: yaml.Node) -> Any:
        """The Python value of ``node``; a bad tag (``!!python/…``) becomes a problem and None."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(node, f"not allowed in a manifest: {_yaml_reason(exc)}")
        except (ValueError, OverflowError) as exc:  # PyYAML lets "2025-13-45" raise ValueError
            self.problem(node, f"not a valid value: {exc}")
        return None

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        """Text of a single value; a list or mapping is a problem."""
        value = self.construct(node)
        if isinstance(value, list | dict | set | tuple | bytes):
            kind = "a list" if isinstance(value, list | set | tuple) else "a nested value"
            self.problem(node, f"{what} must be a single value, not {kind}")
            return None
        return cell_text(value)

    def pairs(self, node: yaml.Node, what: str) -> Iterator[tuple[yaml.Node, str, yaml.Node]]:
        """``(key node, key text, value node)`` of a mapping node; duplicate keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping of column: value")
            return
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node, "a key")
            if key is None:
                continue
            if not key:
                self.problem(key_node, f"{what} has an empty key")
                continue
            if key in seen:
                self.problem(key_node, f"{what} repeats the key {key!r}")
                continue
            seen.add(key)
            yield key_node, key, value_node

    def values(self, node: yaml.Node, what: str) -> dict[str, str]:
        """A row or ``defaults:`` mapping as canonical column -> text (blank values absent)."""
        values: dict[str, str] = {}
        names: set[str] = set()
        for key_node, key, value_node in self.pairs(node, what):
            name = self.builder.name(key)
            if name in names:
                self.problem(key_node, f"{what} gives column {name!r} twice")
            names.add(name)
            text = self.scalar(value_node, f"the value of {key!r}")
            if text:
                values[name] = text
        return values


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem or exc).strip()


def _load_yaml(
    path: Path, sheet: str | None, builder: _Builder
) -> tuple[list[ManifestRow], dict[str, str], dict[str, tuple[str, ...]]]:
    source = display_name(path)
    try:
        text = decode_text(_read_bytes(path))
    except _BadBytes as exc:
        builder.problem(source, exc.text.count("\n", 0, exc.index) + 1, None, str(exc))
        return [], {}, {}
    except _Unreadable as exc:
        builder.problem(source, None, None, str(exc))
        return [], {}, {}
    loader = _NoAliasLoader(text)
    try:
        top = _compose(loader, source, builder)
        if top is None:
            return [], {}, {}
        yaml_file = _YamlFile(loader, source, builder)
        if isinstance(top, yaml.SequenceNode):
            return _yaml_rows(yaml_file, top), {}, {}
        if isinstance(top, yaml.MappingNode):
            return _yaml_mapping(yaml_file, top, path, sheet)
        builder.problem(source, _line(top), None, "expected a list of rows or a mapping with rows:")
        return [], {}, {}
    finally:
        loader.dispose()


def _compose(loader: _NoAliasLoader, source: str, builder: _Builder) -> yaml.Node | None:
    try:
        node: yaml.Node | None = loader.get_single_node()
    except _AliasFound as exc:
        message = "YAML aliases (*name) are not supported; put shared values under defaults:"
        builder.problem(source, exc.line, None, message)
        return None
    except RecursionError:
        builder.problem(source, None, None, "not valid YAML: nested too deeply")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        builder.problem(source, line, None, f"not valid YAML: {_yaml_reason(exc)}")
        return None
    if node is None:
        builder.problem(source, None, None, "the file is empty")
    return node


def _yaml_rows(yaml_file: _YamlFile, node: yaml.Node) -> list[ManifestRow]:
    if not isinstance(node, yaml.SequenceNode):
        yaml_file.problem(node, "rows: must be a list of rows")
        return []
    rows: list[ManifestRow] = []
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            yaml_file.problem(item, "a row must be a mapping of column: value")
            continue
        row = yaml_file.builder.row(yaml_file.source, _line(item), yaml_file.values(item, "a row"))
        if row is not None:
            rows.append(row)
    return rows


def _yaml_mapping(
    yaml_file: _YamlFile, top: yaml.Node, path: Path, sheet: str | None
) -> tuple[list[ManifestRow], dict[str, str], dict[str, tuple[str, ...]]]:
    sections: dict[str, yaml.Node] = {}
    for key_node, key, value_node in yaml_file.pairs(top, "the manifest"):
        if key in YAML_KEYS:
            sections[key] = value_node
        else:
            yaml_file.problem(
                key_node, f"unknown key {key!r}; expected one of {', '.join(YAML_KEYS)}"
            )
    settings = _yaml_settings(yaml_file, sections)
    builder = yaml_file.builder
    # Renames and defaults first: they shape every row, from the source file and inline alike.
    if "columns" in sections:
        for _, key, value_node in yaml_file.pairs(sections["columns"], "columns:"):
            target = yaml_file.scalar(value_node, f"columns: {key!r}")
            if target:
                builder.renames[fold_header(key)] = fold_header(target)
    if "defaults" in sections:
        builder.defaults = yaml_file.values(sections["defaults"], "defaults:")
    if "passthrough" in sections:
        builder.own.update(_yaml_names(yaml_file, sections["passthrough"]))
    rows: list[ManifestRow] = []
    if "source" in settings:
        rows += _yaml_source(yaml_file, sections["source"], settings, path, sheet)
    if "rows" in sections:
        rows += _yaml_rows(yaml_file, sections["rows"])
    elif "source" not in sections:
        yaml_file.problem(top, "expected rows: (a list of rows) or source: (a CSV or .xlsx file)")
    matrix = _yaml_matrix(yaml_file, sections["matrix"]) if "matrix" in sections else {}
    return rows, settings, matrix


def _yaml_matrix(yaml_file: _YamlFile, node: yaml.Node) -> dict[str, tuple[str, ...]]:
    """``matrix:``: column -> the list of values every row is expanded over."""
    matrix: dict[str, tuple[str, ...]] = {}
    for key_node, key, value_node in yaml_file.pairs(node, "matrix:"):
        if not isinstance(value_node, yaml.SequenceNode) or not value_node.value:
            yaml_file.problem(value_node, f"matrix: {key!r} must be a list of values", key)
            continue
        texts = [yaml_file.scalar(item, f"a value of matrix: {key!r}") for item in value_node.value]
        values = tuple(dict.fromkeys(t for t in texts if t))
        if len(values) != len(texts):
            yaml_file.problem(key_node, f"matrix: {key!r} has blank or repeated values", key)
        matrix[yaml_file.builder.name(key)] = values
    return matrix


def _yaml_names(yaml_file: _YamlFile, node: yaml.Node) -> list[str]:
    """``passthrough:``: the team's own columns, carried through even if they look like typos."""
    if not isinstance(node, yaml.SequenceNode):
        yaml_file.problem(node, "passthrough: must be a list of column names")
        return []
    names = (yaml_file.scalar(item, "a passthrough: name") for item in node.value)
    return [fold_header(name) for name in names if name]


def _yaml_settings(yaml_file: _YamlFile, sections: Mapping[str, yaml.Node]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key in SCALAR_SETTINGS:
        if key in sections:
            text = yaml_file.scalar(sections[key], f"{key}:")
            if text:
                settings[key] = text
    return settings


def _yaml_source(
    yaml_file: _YamlFile,
    node: yaml.Node,
    settings: Mapping[str, str],
    path: Path,
    sheet: str | None,
) -> list[ManifestRow]:
    source_path = path.parent / settings["source"]
    if source_path.suffix.lower() not in DELIMITED_SUFFIXES + WORKBOOK_SUFFIXES:
        yaml_file.problem(node, "source: must be a .csv, .tsv, .txt or .xlsx file")
        return []
    if not source_path.is_file():
        yaml_file.problem(node, f"source: file not found: {display_name(source_path)}")
        return []
    chosen_sheet = sheet if sheet is not None else settings.get("sheet")
    return _load_spreadsheet(
        source_path, chosen_sheet, yaml_file.builder, display_name(source_path)
    )
