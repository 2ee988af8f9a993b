"""``batchgen repair RESULTS``: a results file another program rewrote, made trustworthy.

A spreadsheet may have deleted columns, sorted the rows, re-encoded the file or edited
cells; the seal (:mod:`batchgen.seal`) then refuses it, because it can no longer say what
was paid for. Repair reads whatever can be read (any encoding a spreadsheet writes, any
delimiter, missing columns), keeps one line per key in batchgen's own format, and reseals.

Money comes first: every key that ever had a job id keeps it, and a key that had a job or
a create in flight but whose job id is gone (the column was deleted) becomes
``unresolved``, so the next run looks it up in the provider's list before sending
anything, and a provider that cannot list leaves it unsent. Repair itself sends nothing.
The old file is kept as ``RESULTS.bak-<timestamp>``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from batchgen import seal
from batchgen.columns import FIXED_COLUMNS
from batchgen.errors import LedgerError
from batchgen.ledger import Record, encode_line, lock_results, utc_now
from batchgen.status import AT_PROVIDER, MAYBE_PAID, Status

#: Keys a spreadsheet may have made from an id like 001 or 1e5: worth a warning.
NUMBER_LIKE = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
LOST_JOB_MESSAGE = (
    "batchgen repair: its job id was lost from the results file; "
    "the next run looks it up before sending anything"
)


@dataclass(frozen=True)
class RepairReport:
    """What a repair read and kept."""

    results: Path
    backup: Path
    lines_read: int
    rows: int
    with_job: int
    to_look_up: int
    warnings: tuple[str, ...]

    def summary(self) -> str:
        """The lines ``batchgen repair`` prints."""
        lines = [
            f"repaired {self.results}: {self.lines_read:,} lines read, {self.rows:,} rows kept",
            f"  {self.with_job:,} with their job id (paid: never sent again)",
            f"  {self.to_look_up:,} paid or maybe paid whose job id was lost: marked "
            "unresolved, looked up in the provider's list before anything is sent",
            f"the file as it was: {self.backup}",
        ]
        return "\n".join([*lines, *(f"warning: {w}" for w in self.warnings)])


def repair_results(results: Path) -> RepairReport:
    """Rebuild ``results`` in batchgen's format from whatever another program left, and
    reseal it. Takes the results file's lock; sends nothing."""
    lock = lock_results(results)
    try:
        return _repair_locked(results, results.resolve())
    finally:
        lock.release()


def _repair_locked(results: Path, real: Path) -> RepairReport:
    try:
        raw = real.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{results}: cannot read the results file: {exc.strerror}") from None
    header, lines = read_any(results, raw)
    states = merge(lines)
    passthrough = [c for c in header if c and c not in FIXED_COLUMNS]
    backup = real.with_name(f"{real.name}.bak-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}")
    _write(results, backup, [raw])
    new_header = [*FIXED_COLUMNS, *passthrough]
    digest = _write(results, real, _encoded(new_header, _in_row_order(states)))
    seal.save_seal(real, digest.seal(new_header))
    return RepairReport(
        results=results,
        backup=backup,
        lines_read=len(lines),
        rows=len(states),
        with_job=sum(1 for s in states.values() if s.get("job_id")),
        to_look_up=sum(1 for s in states.values() if s.get("error_message") == LOST_JOB_MESSAGE),
        warnings=_warnings(states),
    )


def read_any(results: Path, raw: bytes) -> tuple[list[str], list[Record]]:
    """The header and every line of a results file as a spreadsheet may have saved it."""
    text = _decode(raw)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    limit = min(len(text) + 1, 2**31 - 1)
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [_column_name(c) for c in rows[0]] if rows else []
    if "key" not in header:
        raise LedgerError(
            f"{results}: has no key column, so no row can be told from another: restore "
            "the file batchgen wrote from a backup; nothing was changed"
        )
    body = rows[1:]
    if body and not raw.endswith(b"\n") and len(body[-1]) < len(header):
        body = body[:-1]  # the torn last line of a crash: its create was never sent
    # short rows (trailing cells a spreadsheet dropped) are padded; cells past the header
    # have no name to go by and are dropped
    padded = (row + [""] * (len(header) - len(row)) for row in body)
    lines = [dict(zip(header, row, strict=False)) for row in padded]
    return header, [line for line in lines if line.get("key", "").strip()]


def _decode(raw: bytes) -> str:
    """Text from the encodings spreadsheets save CSV in: UTF-8 (BOM or not), UTF-16, ANSI."""
    if raw.startswith(seal.BOM):
        return raw[len(seal.BOM) :].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _column_name(cell: str) -> str:
    """batchgen's own columns whatever their case or spacing; the user's as they are."""
    name = cell.strip()
    return name.lower() if name.lower() in FIXED_COLUMNS else name


def merge(lines: Sequence[Record]) -> dict[str, Record]:
    """One state per key: its latest line (by timestamp where there is one), with every
    job id it ever had kept, and a lost one turned into a lookup."""
    ordered = sorted(enumerate(lines), key=lambda pair: (pair[1].get("timestamp", ""), pair[0]))
    history: dict[str, list[Record]] = {}
    for _index, line in ordered:
        history.setdefault(line["key"].strip(), []).append(line)
    return {key: _merged(key, versions) for key, versions in history.items()}


def _merged(key: str, versions: Sequence[Record]) -> Record:
    state = {name: value for name, value in versions[-1].items() if name}
    state["key"] = key
    state["timestamp"] = state.get("timestamp") or utc_now()
    job_ids = [v["job_id"] for v in versions if v.get("job_id")]
    if job_ids:
        state["job_id"] = job_ids[-1]
        return state
    statuses = {v.get("status", "") for v in versions}
    # no status at all (the column was deleted) says nothing: it may have been paid
    if statuses & (AT_PROVIDER | MAYBE_PAID) or not any(statuses):
        times = [t for v in versions for t in (v.get("submitted_at"), v.get("timestamp")) if t]
        state.update(
            status=Status.UNRESOLVED,
            error_code="repaired",
            error_message=LOST_JOB_MESSAGE,
            submitted_at=min(times, default=""),
        )
    return state


def _in_row_order(states: dict[str, Record]) -> list[Record]:
    def row(state: Record) -> int:
        try:
            return int(state.get("row", ""))
        except ValueError:
            return 2**31

    return sorted(states.values(), key=row)  # stable: ties keep the order keys were seen


def _encoded(header: Sequence[str], states: Iterable[Record]) -> Iterable[bytes]:
    yield seal.BOM + encode_line(header)
    for state in states:
        yield encode_line([state.get(c, "") for c in header])


def _write(results: Path, path: Path, chunks: Iterable[bytes]) -> seal.Digest:
    """Write ``chunks`` to ``path`` atomically and durably; their digest."""
    temporary = path.with_name(path.name + ".repair.tmp")
    digest = seal.Digest()
    try:
        with temporary.open("wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise LedgerError(f"{results}: cannot write {path.name}: {exc.strerror}") from None
    return digest


def _warnings(states: dict[str, Record]) -> tuple[str, ...]:
    numeric = [key for key in states if NUMBER_LIKE.match(key)]
    if not numeric:
        return ()
    shown = ", ".join(numeric[:5]) + (", …" if len(numeric) > 5 else "")
    return (
        f"{len(numeric)} key(s) look like numbers a spreadsheet may have rewritten "
        f"(001 saved as 1): {shown}. If your manifest's ids differ, the next run sends "
        "those rows as new: check with `batchgen run MANIFEST --dry-run` first",
    )
