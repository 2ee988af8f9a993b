"""Summaries of a report by one of the team's columns (campaign, owner, any column).

Each value of the column becomes a :class:`GroupRow`: rows per status, seconds of video and
the estimated cost of its rows with a job. The table work is pandas' (the project's declared
table library); pandas is imported inside the functions that need it, never at import time,
so that ``batchgen run`` (which never summarises) starts without paying for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchgen.errors import UsageError
from batchgen.report.summary import Report, ReportRow, ordered_statuses

if TYPE_CHECKING:  # the type only: importing pandas for real is what this module avoids
    import pandas as pd

#: The team's usual columns, summarised when ``--by`` is not given and they are present.
USUAL_GROUP_COLUMNS = ("campaign", "owner")
#: Request columns worth a summary besides the manifest's own (passthrough) columns.
REQUEST_GROUP_COLUMNS = ("model", "size", "seconds", "style")
BLANK_LABEL = "(blank)"


@dataclass(frozen=True)
class GroupRow:
    """One value of the column: its rows per status, seconds of video and estimated cost."""

    value: str  # the column's value, stripped ("" when blank: see :attr:`label`)
    counts: Mapping[str, int]  # status -> rows
    rows: int
    seconds: int  # seconds of video (rows with a job)
    cost: float | None  # estimated USD (rows with a job), None without prices

    @property
    def label(self) -> str:
        """The value as shown to people: ``(blank)`` for an empty cell."""
        return self.value or BLANK_LABEL


@dataclass(frozen=True)
class GroupSummary:
    """A report summarised by ``column``; a total is not a group (the report has it)."""

    column: str
    groups: tuple[GroupRow, ...]  # sorted by value, the blank value last


def groupable_columns(report: Report) -> tuple[str, ...]:
    """The columns :func:`summarise_by` accepts: the manifest's own, then request columns."""
    # a request column nobody filled in (style for OpenAI) would only be one "(blank)" group
    requests = tuple(c for c in REQUEST_GROUP_COLUMNS if any(r.get(c) for r in report.rows))
    return report.passthrough + tuple(c for c in requests if c not in report.passthrough)


def default_group_columns(report: Report) -> tuple[str, ...]:
    """The team's usual columns (campaign, owner) that this report has, in that order.

    Matched regardless of case (``Campaign`` in the sheet); the report's spelling is kept.
    """
    by_folded = {c.casefold(): c for c in report.passthrough}
    return tuple(by_folded[c] for c in USUAL_GROUP_COLUMNS if c in by_folded)


def resolve_group_column(report: Report, column: str) -> str:
    """``column`` as the report spells it (case does not matter).

    Raises :class:`UsageError` naming the columns there are when the report has no such column.
    """
    available = groupable_columns(report)
    by_folded = {c.casefold(): c for c in available}
    found = by_folded.get(column.strip().casefold())
    if found is None:
        there = ", ".join(available) or "none"
        raise UsageError(
            f"{report.results}: --by {column}: no such column; columns there are: {there}"
        )
    return found


def summarise_by(report: Report, column: str) -> GroupSummary:
    """The report's rows grouped by the value of ``column`` (see :func:`resolve_group_column`)."""
    name = resolve_group_column(report, column)
    if not report.rows:
        return GroupSummary(name, ())
    frame = _frame(report.rows, name)
    groups = tuple(_group(report, value, part) for value, part in _sorted_groups(frame))
    return GroupSummary(name, groups)


def _frame(rows: tuple[ReportRow, ...], column: str) -> pd.DataFrame:
    import pandas as pd  # here, not at the top: see the module's docstring

    return pd.DataFrame(
        {
            "value": [r.get(column).strip() for r in rows],
            "status": [r.status for r in rows],
            "job_seconds": [r.seconds if r.has_job else 0 for r in rows],
            "position": range(len(rows)),  # back to the ReportRow, for the profile's costs
        }
    )


def _sorted_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    # a blank cell is a group of its own, shown last: it is usually "not filled in yet"
    parts = [(str(value), part) for value, part in frame.groupby("value", sort=True)]
    return sorted(parts, key=lambda item: (item[0] == "", item[0]))


def _group(report: Report, value: str, part: pd.DataFrame) -> GroupRow:
    counts = {str(s): int(n) for s, n in part["status"].value_counts(sort=False).items()}
    ordered = {s: counts[s] for s in ordered_statuses(counts)}
    members = [report.rows[int(i)] for i in part["position"]]
    return GroupRow(
        value=value,
        counts=ordered,
        rows=len(part),
        seconds=int(part["job_seconds"].sum()),
        cost=_cost(report, members),
    )


def _cost(report: Report, members: list[ReportRow]) -> float | None:
    # the profile's one cost function, over the group's rows with a job (as Report.cost)
    if report.profile is None:
        return None
    return report.profile.cost_of_jobs(r.record for r in members)


def summaries_for(report: Report, columns: Sequence[str] = ()) -> tuple[GroupSummary, ...]:
    """A summary per column of ``columns`` (``--by``), else per :func:`default_group_columns`.

    Every column is checked before any is summarised, so a typo fails fast (exit 2).
    """
    names = [resolve_group_column(report, c) for c in columns] or default_group_columns(report)
    return tuple(summarise_by(report, name) for name in dict.fromkeys(names))
