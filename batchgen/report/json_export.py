"""``batchgen report --json FILE``: where the results stand, for monitoring and scripts.

Counts per status, seconds of video, the estimated cost, every row needing attention with
its reason and next step, and the summaries by the team's columns, as one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchgen.errors import LedgerError
from batchgen.next_steps import next_step
from batchgen.report.groups import GroupRow, GroupSummary
from batchgen.report.summary import Report, ReportRow


def report_document(report: Report, summaries: Sequence[GroupSummary] = ()) -> dict[str, Any]:
    """The report as JSON-ready data (see the module's docstring)."""
    return {
        "results": str(report.results),
        "profile": report.profile.name if report.profile is not None else None,
        "rows": len(report.rows),
        "counts": {s: report.counts[s] for s in report.ordered_statuses()},
        "jobs": report.jobs,
        "seconds": report.seconds,
        "cost": _money(report.cost),
        "attention": [_attention(r) for r in report.attention],
        "summaries": [_summary(s) for s in summaries],
    }


def write_json(report: Report, path: Path, summaries: Sequence[GroupSummary] = ()) -> Path:
    """Write :func:`report_document` to ``path`` as UTF-8 JSON; returns ``path``."""
    text = json.dumps(report_document(report, summaries), ensure_ascii=False, indent=2)
    try:
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"{path}: cannot write the report: {exc.strerror}") from None
    return path


def _attention(row: ReportRow) -> dict[str, Any]:
    return {
        "row": row.row,
        "key": row.key,
        "status": row.status,
        "job_id": row.get("job_id") or None,
        "reason": row.reason or None,
        "next_step": next_step(row.record) or None,
    }


def _summary(summary: GroupSummary) -> dict[str, Any]:
    return {"column": summary.column, "groups": [_group(g) for g in summary.groups]}


def _group(group: GroupRow) -> dict[str, Any]:
    return {
        "value": group.value,
        "label": group.label,
        "rows": group.rows,
        "counts": dict(group.counts),
        "seconds": group.seconds,
        "cost": _money(group.cost),
    }


def _money(cost: float | None) -> float | None:
    # an estimate in USD: 0.1 * 3 must not read 0.30000000000000004
    return None if cost is None else round(cost, 4)
