"""Rows needing attention, each with its reason and the command that moves it on.

The end of ``run``, its ``--summary-json`` and ``--notify`` all list the same first rows
(see :data:`batchgen.status.ATTENTION`), so they are worked out once, here, from the
ledger's latest records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from batchgen.next_steps import next_step
from batchgen.status import ATTENTION, REFUSED, Status

#: How many rows the end of a run, its summary JSON and a notification list.
SHOWN = 10
#: What a command shows for the manifest when it does not know it (``report``).
SOME_MANIFEST = "MANIFEST"


@dataclass(frozen=True)
class AttentionRow:
    """One row a person should look at: where, how it stands, why, what to do and type."""

    row: int | None
    key: str
    status: str
    reason: str
    next_step: str  # in words (:func:`batchgen.next_steps.next_step`)
    command: str  # the command that moves it on, with this run's paths

    def as_json(self) -> dict[str, object]:
        """The row for ``--summary-json`` and notifications."""
        return {
            "row": self.row,
            "id": self.key,
            "status": self.status,
            "reason": self.reason,
            "next_step": self.next_step,
            "command": self.command,
        }


def attention_rows(
    records: Iterable[Mapping[str, str]], results: Path, manifest: Path | None
) -> list[AttentionRow]:
    """Every record needing attention, in spreadsheet order, with its next step."""
    found = [
        AttentionRow(
            row=_row_number(r.get("row", "")),
            key=r.get("key", ""),
            status=r.get("status", ""),
            reason=_reason(r),
            next_step=next_step(r),
            command=next_command(r, results, manifest),
        )
        for r in records
        if r.get("status", "") in ATTENTION
    ]
    return sorted(found, key=lambda a: (a.row is None, a.row or 0, a.key))


def next_command(record: Mapping[str, str], results: Path, manifest: Path | None) -> str:
    """The command that moves the row on (once fixed, where it needs fixing)."""
    status = record.get("status", "")
    run = f"batchgen run {quote(str(manifest)) if manifest else SOME_MANIFEST}"
    if status in REFUSED:
        return f"{run} --retry-rejected"
    if status == Status.UNRESOLVED:
        key = quote(record.get("key", ""))
        return f"batchgen resolve {quote(str(results))} {key} --job-id ID"
    # error: a rerun sends it again; failed, expired, lost: a rerun sends it under a new id
    return run


def _reason(record: Mapping[str, str]) -> str:
    parts = [p for p in (record.get("error_code", ""), record.get("error_message", "")) if p]
    # provider text goes to terminals and chat: one line, bounded
    text = " ".join(": ".join(parts).split())
    return text if len(text) <= 200 else text[:199] + "…"


def _row_number(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def attention_json(rows: list[AttentionRow]) -> dict[str, object]:
    """``attention_total`` and the first :data:`SHOWN` rows, for JSON summaries."""
    return {"attention_total": len(rows), "attention": [r.as_json() for r in rows[:SHOWN]]}


def attention_lines(rows: list[AttentionRow]) -> list[str]:
    """The first :data:`SHOWN` rows (row, id, status, reason, what to do), then the
    commands that move them on, each once."""
    if not rows:
        return []
    shown = rows[:SHOWN]
    more = f" (the first {len(shown)} shown)" if len(rows) > len(shown) else ""
    lines = [f"needs attention: {len(rows)} rows{more}"]
    cells = [(f"row {r.row if r.row is not None else '?'}", r.key, r.status) for r in shown]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    for row, cell in zip(shown, cells, strict=True):
        padded = "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True))
        lines.append(f"  {padded}  {row.reason or '(no reason recorded)'}")
        if row.next_step:
            lines.append(f"      {row.next_step}")
    lines.append("next:")
    lines += [f"  {command}" for command in dict.fromkeys(r.command for r in shown)]
    return lines
