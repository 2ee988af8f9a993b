"""The report: where every row of a results file stands, for people and for spreadsheets.

:func:`load_report` reads the latest state of each key from the ledger; the summary is
text for the terminal, and :func:`write_csv` / :func:`write_xlsx` export one row per key
for the content team. The HTML contact sheet lives in :mod:`batchgen.report.html`.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from batchgen.columns import ASSET_PATH_COLUMNS, FIXED_COLUMNS
from batchgen.errors import LedgerError
from batchgen.ledger import Record, read_ledger
from batchgen.profile import Profile
from batchgen.status import ATTENTION
from batchgen.status import ORDER as STATUS_ORDER

if TYPE_CHECKING:  # groups.py builds on this module; the summaries only pass through here
    from batchgen.report.groups import GroupSummary

_LEADING = ("row", "key", "status", "error_code", "error_message")
#: Columns of the CSV/XLSX export: who and how it stands first, then the rest of the ledger.
EXPORT_COLUMNS = _LEADING + tuple(c for c in FIXED_COLUMNS if c not in _LEADING)
_INTEGER_COLUMNS = frozenset({"row", "progress", "attempts", "seconds", "file_bytes"})

# OWASP "CSV injection": a spreadsheet runs a cell starting with these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what an .xlsx cannot hold
# provider text goes to a terminal: no escape sequences (C0, DEL and C1 controls)
_TERMINAL_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_XLSX_CELL_LIMIT = 32767  # Excel's maximum characters in one cell


@dataclass(frozen=True)
class ReportRow:
    """One key of the results file at its latest state, with asset paths resolved."""

    key: str
    row: int | None
    status: str
    record: Record = field(repr=False)  # every column of the ledger line, passthrough included
    assets: Mapping[str, Path] = field(default_factory=dict)  # ASSET_PATH_COLUMNS, absolute

    @classmethod
    def from_record(cls, record: Record, base: Path) -> ReportRow:
        """Build from a ledger record; relative asset paths are taken relative to ``base``."""
        assets = {c: base / record[c] for c in ASSET_PATH_COLUMNS if record.get(c, "").strip()}
        return cls(
            key=record.get("key", ""),
            row=_to_int(record.get("row", "")),
            status=record.get("status", "") or "unknown",
            record=dict(record),
            assets=assets,
        )

    @property
    def file(self) -> Path | None:
        """The downloaded video, when there is one."""
        return self.assets.get("file")

    @property
    def thumbnail(self) -> Path | None:
        """The downloaded thumbnail image, when there is one."""
        return self.assets.get("thumbnail")

    def get(self, column: str) -> str:
        """The ledger's text for ``column`` ('' when absent)."""
        return self.record.get(column, "")

    @property
    def seconds(self) -> int:
        """Seconds of video requested (0 when blank or not a number)."""
        return _to_int(self.get("seconds")) or 0

    @property
    def file_bytes(self) -> int | None:
        """Size of the downloaded video in bytes, when known."""
        return _to_int(self.get("file_bytes"))

    @property
    def has_job(self) -> bool:
        """Whether the provider accepted a job for this row (so it is paid for)."""
        return bool(self.get("job_id"))

    @property
    def needs_attention(self) -> bool:
        """Whether a person should look at this row (see :data:`ATTENTION`)."""
        return self.status in ATTENTION

    @property
    def reason(self) -> str:
        """``code: message`` explaining the status, or '' when there is none."""
        parts = [p for p in (self.get("error_code"), self.get("error_message")) if p]
        return ": ".join(parts)

    @property
    def label(self) -> str:
        """How a person finds the row: ``row 4 (c-04)``."""
        where = f"row {self.row}" if self.row is not None else "row ?"
        return f"{where} ({self.key})"


@dataclass(frozen=True)
class Report:
    """Every row of one results file, in spreadsheet order, plus totals."""

    results: Path
    rows: tuple[ReportRow, ...]
    passthrough: tuple[str, ...] = ()  # the manifest's own columns, in ledger order
    profile: Profile | None = None

    @property
    def counts(self) -> Counter[str]:
        """Rows per status."""
        return Counter(r.status for r in self.rows)

    @property
    def seconds(self) -> int:
        """Seconds of video of the rows that have a job id."""
        return sum(r.seconds for r in self.rows if r.has_job)

    @property
    def jobs(self) -> int:
        """Rows that have a job id."""
        return sum(1 for r in self.rows if r.has_job)

    @property
    def cost(self) -> float | None:
        """Estimated USD of the rows with a job id; None without a profile or any price."""
        if self.profile is None:
            return None
        return self.profile.cost_of_jobs(r.record for r in self.rows)

    @property
    def attention(self) -> tuple[ReportRow, ...]:
        """Rows a person should look at, in spreadsheet order."""
        return tuple(r for r in self.rows if r.needs_attention)

    def ordered_statuses(self) -> list[str]:
        """Statuses present in the report, in :data:`STATUS_ORDER` (unknown ones last)."""
        return ordered_statuses(self.counts)


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """``statuses`` in :data:`STATUS_ORDER`, unknown ones after it alphabetically."""
    present = set(statuses)
    known = [s for s in STATUS_ORDER if s in present]
    return known + sorted(present - set(STATUS_ORDER))


def load_report(
    results: Path, profile: Profile | None = None, *, base: Path | None = None
) -> Report:
    """Read the latest state of every key in ``results``.

    ``base`` is the folder relative asset paths are resolved against: the current directory
    (where ``batchgen`` ran when it downloaded them) unless given.
    Raises :class:`LedgerError` when the file is missing or not a results file.
    """
    if not results.is_file():
        raise LedgerError(f"{results}: no such results file")
    states = read_ledger(results)
    folder = Path.cwd() if base is None else base
    rows = sorted(
        (ReportRow.from_record(r, folder) for r in states.values()),
        key=lambda r: (r.row is None, r.row or 0, r.key),
    )
    return Report(results, tuple(rows), _passthrough(states.values()), profile)


def render_summary(report: Report, summaries: Sequence[GroupSummary] = ()) -> str:
    """The terminal summary: rows per status, video, cost, rows needing attention, then a
    table per summary (:func:`batchgen.report.groups.summarise_by`)."""
    lines = [f"results: {report.results} ({len(report.rows)} rows)", *_status_table(report)]
    lines.append(f"video: {report.seconds} seconds in {report.jobs} jobs")
    if report.cost is not None and report.profile is not None:
        lines.append(f"estimated cost: ${report.cost:,.2f} (profile {report.profile.name})")
    attention = report.attention
    if attention:
        lines.append(f"needs attention: {len(attention)} rows")
        lines.extend(_attention_line(r) for r in attention)
    for summary in summaries:
        lines += ["", *_group_table(summary, priced=report.cost is not None)]
    return "\n".join(lines)


def write_csv(report: Report, path: Path) -> Path:
    """One line per key, formula-safe, UTF-8 with BOM so that Excel opens it; returns ``path``."""
    header = export_header(report)
    with _create_text(path) as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow([neutralise(c) for c in header])
        for row in report.rows:
            values = export_values(row, header, path.parent)
            writer.writerow([neutralise(values[c]) for c in header])
    return path


def write_xlsx(report: Report, path: Path, summaries: Sequence[GroupSummary] = ()) -> Path:
    """One row per key as an Excel workbook, with a hyperlink to each video; returns ``path``.

    Bold, frozen header; an autofilter; column widths fitted to the text (prompts capped).
    Each of ``summaries`` becomes a sheet of its own ("by campaign").
    """
    from openpyxl import Workbook  # imported here: slow, and only this export needs it
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "report"
    header = export_header(report)
    sheet.append([xlsx_text(c) for c in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in report.rows:
        _append_xlsx_row(sheet, row, header, path.parent)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    _fit_widths(sheet, header)
    for summary in summaries:
        _add_group_sheet(workbook, summary, priced=report.cost is not None)
    try:
        workbook.save(path)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot write the report: {exc.strerror}") from None
    return path


def _append_xlsx_row(sheet: Any, row: ReportRow, header: list[str], folder: Path) -> None:
    values = export_values(row, header, folder)
    sheet.append([_xlsx_value(c, values[c]) for c in header])
    if row.file is not None and "file" in header:
        cell = sheet.cell(row=sheet.max_row, column=header.index("file") + 1)
        # a relative link keeps working when the folder of report and videos is moved;
        # the target is a URL (spaces as %20), the text shown is the plain path
        cell.hyperlink = relative_link(row.file, folder)
        cell.style = "Hyperlink"


def _add_group_sheet(workbook: Any, summary: GroupSummary, *, priced: bool) -> None:
    from openpyxl.styles import Font

    header, body = _group_grid(summary, priced)
    # Excel: at most 31 characters, none of []:*?/\ ; a duplicate title would be refused
    title = re.sub(r"[\[\]:*?/\\]", "_", f"by {summary.column}")[:31]
    taken = set(workbook.sheetnames)
    title = next(t for n in range(1, 1000) if (t := _numbered(title, n)) not in taken)
    sheet = workbook.create_sheet(title)
    sheet.append([xlsx_text(c) for c in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for values in body:
        sheet.append([xlsx_text(v) if isinstance(v, str) else v for v in values])
        if priced:  # estimated USD, shown as money
            sheet.cell(row=sheet.max_row, column=len(header)).number_format = '"$"#,##0.00'
    sheet.freeze_panes = "A2"
    _fit_widths(sheet, header)


def _numbered(title: str, n: int) -> str:
    return title if n == 1 else f"{title[: 31 - len(str(n)) - 1]} {n}"


def _group_grid(
    summary: GroupSummary, priced: bool
) -> tuple[list[str], list[list[str | int | float | None]]]:
    """The summary as a header and rows: value, rows, a column per status, seconds, cost."""
    statuses = ordered_statuses(s for g in summary.groups for s in g.counts)
    header = [summary.column, "rows", *statuses, "seconds", *(["cost"] if priced else [])]
    body: list[list[str | int | float | None]] = []
    for group in summary.groups:
        costs: list[str | int | float | None] = [group.cost] if priced else []
        counts = [group.counts.get(s, 0) for s in statuses]
        body.append([group.label, group.rows, *counts, group.seconds, *costs])
    return header, body


def _group_table(summary: GroupSummary, *, priced: bool) -> list[str]:
    header, body = _group_grid(summary, priced)
    grid: list[list[str | int | float | None]] = [list(header), *body]
    cells = [[_cell_text(v, i) for i, v in enumerate(row)] for row in grid]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [f"by {one_line(summary.column, 40)}:"]
    for row in cells:
        first = f"{row[0]:<{widths[0]}}"  # the value reads left to right, numbers right-aligned
        rest = (f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True))
        lines.append("  " + "  ".join([first, *rest]).rstrip())
    return lines


def _cell_text(value: str | int | float | None, index: int) -> str:
    if isinstance(value, str):
        return one_line(value, 40) if index == 0 else value
    if isinstance(value, float):
        return f"${value:,.2f}"
    return "-" if value is None else str(value)


def _xlsx_value(column: str, text: str) -> str | int:
    number = _to_int(text) if column in _INTEGER_COLUMNS else None
    return number if number is not None and str(number) == text.strip() else xlsx_text(text)


def _fit_widths(sheet: Any, header: list[str]) -> None:
    from openpyxl.utils import get_column_letter

    for index, column in enumerate(header, start=1):
        cells = sheet.iter_rows(min_col=index, max_col=index, values_only=True)
        longest = max((len(str(v)) for (v,) in cells if v is not None), default=0)
        cap = 60 if column in ("prompt", "error_message") else 40
        sheet.column_dimensions[get_column_letter(index)].width = min(max(longest, 6) + 2, cap)


def export_header(report: Report) -> list[str]:
    """Columns of the CSV/XLSX export: :data:`EXPORT_COLUMNS` then passthrough columns."""
    return [*EXPORT_COLUMNS, *report.passthrough]


def export_values(row: ReportRow, header: Iterable[str], folder: Path) -> dict[str, str]:
    """A row's text per column, asset paths made relative to ``folder`` (the export's)."""
    values = {c: row.get(c) for c in header}
    for column, target in row.assets.items():
        if column in values:
            values[column] = relative_link(target, folder, quote=False)
    return values


def neutralise(value: str) -> str:
    """``value`` made safe for a spreadsheet: a would-be formula gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def xlsx_text(value: str) -> str:
    """``value`` as openpyxl accepts it: no control characters, at most 32767 characters."""
    return neutralise(_CONTROL.sub("", value))[:_XLSX_CELL_LIMIT]


def relative_link(target: Path, folder: Path, *, quote: bool = True) -> str:
    """``target`` relative to ``folder`` with ``/`` separators (URL-quoted when ``quote``).

    Falls back to a ``file:`` URI when no relative path exists (another Windows drive).
    """
    from urllib.parse import quote as url_quote

    try:
        relative = Path(os.path.relpath(target, folder)).as_posix()
    except ValueError:
        return target.as_uri()
    return url_quote(relative) if quote else relative


def human_bytes(size: int | None) -> str:
    """``1.2 MB`` for 1_200_000; '' when unknown."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return ""  # unreachable: the loop returns at GB


def one_line(text: str, limit: int = 160) -> str:
    """``text`` on one line for a terminal: whitespace and control characters collapsed."""
    flat = " ".join(_TERMINAL_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _status_table(report: Report) -> list[str]:
    counts = report.counts
    statuses = report.ordered_statuses()
    width = max([len("status"), len("total"), *(len(s) for s in statuses)])
    lines = [f"  {'status':<{width}}  rows"]
    lines += [f"  {s:<{width}}  {counts[s]:>4}" for s in statuses]
    lines.append(f"  {'total':<{width}}  {len(report.rows):>4}")
    return lines


def _attention_line(row: ReportRow) -> str:
    reason = one_line(row.reason) or "no reason recorded"
    return f"  {one_line(row.label, 60)}: {row.status}: {reason}"


def _passthrough(records: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    # every record of a ledger has its header's columns, in header order
    first = next(iter(records), {})
    return tuple(c for c in first if c not in FIXED_COLUMNS)


def _to_int(text: str) -> int | None:
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        return None


def _create_text(path: Path) -> TextIO:
    try:
        return path.open("w", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LedgerError(f"{path}: cannot write the report: {exc.strerror}") from None
