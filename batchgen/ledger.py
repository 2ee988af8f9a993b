"""The results ledger: an append-only CSV event log, one line per state change.

The last line of a key is that row's current state. Each line is a full snapshot of the
row (not a diff), so a person opening the file in Excel can filter it directly, and a
crash that tears the last line loses only that one event. Lines are flushed as written;
the ``submitting`` intent that precedes every paid create is fsync'd before the create
is sent, which is what makes "never pay twice" hold across crashes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

from batchgen.errors import LedgerError, LockHeldError


class Status:
    """Every status a row can have in the results file (see README, "Statuses")."""

    INVALID = "invalid"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    ERROR = "error"
    UNRESOLVED = "unresolved"
    DOWNLOADED = "downloaded"
    EXPIRED = "expired"
    LOST = "lost"
    SKIPPED_BUDGET = "skipped_budget"


#: States a job's poll ends at: nothing more will change at the provider.
FINAL_JOB_STATUSES = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.EXPIRED, Status.LOST, Status.DOWNLOADED}
)


#: States that want the user's attention and make the run exit 1.
ATTENTION_STATUSES = frozenset({Status.REJECTED, Status.ERROR, Status.UNRESOLVED, Status.INVALID})

BOOKKEEPING_COLUMNS = (
    "key",
    "row",
    "job_id",
    "status",
    "progress",
    "error_code",
    "error_message",
    "attempts",
    "timestamp",
    "submitted_at",  # when the first create that may have made this job was sent
)
REQUEST_COLUMNS = (
    "model", "prompt", "seconds", "size", "image", "style", "watermark", "private", "remix_of",
)  # fmt: skip
ASSET_COLUMNS = ("expires_at", "file", "file_bytes", "sha256", "thumbnail", "spritesheet")
FIXED_COLUMNS = BOOKKEEPING_COLUMNS + REQUEST_COLUMNS + ASSET_COLUMNS

BOM = "\ufeff".encode()
SHARED_CHARS = 16  # values this short repeat across rows (status, model, size): kept once

Record = dict[str, str]


def utc_now() -> str:
    """The timestamp format of the ledger: ISO 8601 UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_results_path(manifest_path: Path) -> Path:
    """``<manifest name>.results.csv`` beside the manifest."""
    return manifest_path.with_name(f"{manifest_path.stem}.results.csv")


def read_ledger(path: Path) -> dict[str, Record]:
    """The latest state of every key in an existing results file (empty if there is none)."""
    if not path.exists():
        return {}
    _header, states, _end = _parse(path)
    return states


class Ledger:
    """An open results file: the latest state per key, and appends that are durable.

    Use :meth:`open` (which takes the lock); close it, or use it as a context manager.
    """

    def __init__(
        self,
        path: Path,
        header: Sequence[str],
        states: dict[str, Record],
        handle: BinaryIO,
        lock: FileLock,
    ) -> None:
        self.path = path
        self.header = tuple(header)
        self.states = states
        self._handle = handle
        self._lock = lock

    @classmethod
    def open(cls, path: Path, passthrough: Sequence[str] = ()) -> Ledger:
        """Lock ``path`` for this run, read it, repair a torn last line, and open it for appends.

        Raises :class:`LockHeldError` when another run holds it.
        """
        if path.parent.exists() and not path.parent.is_dir():
            raise LedgerError(f"{path}: {path.parent} is a file, not a folder")
        if not path.parent.is_dir():
            raise LedgerError(f"{path}: the folder {path.parent} does not exist")
        lock_path = Path(f"{path}.lock")
        try:
            # filelock reports some failures as contention (ENOENT) and lets others escape
            # (EACCES): creating the lock file first says plainly that the folder is the problem.
            lock_path.touch(exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"{path}: cannot create files in {path.parent}: {exc.strerror}"
            ) from None
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise LockHeldError(
                f"{path}: another batchgen run is using this results file "
                f"(lock {path}.lock); wait for it to finish"
            ) from None
        except OSError as exc:
            raise LedgerError(f"{path}: cannot lock {lock_path}: {exc.strerror}") from None
        try:
            return cls._open_locked(path, passthrough, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, path: Path, passthrough: Sequence[str], lock: FileLock) -> Ledger:
        try:
            if path.exists() and path.stat().st_size > 0:
                header, states, end = _parse(path)
                _truncate(path, end)
                handle = path.open("ab")
                return cls(path, header, states, handle, lock)
            header = list(FIXED_COLUMNS) + [c for c in passthrough if c not in FIXED_COLUMNS]
            handle = path.open("wb")
            handle.write(BOM + _encode_line(header))
            _sync(handle)
            return cls(path, header, {}, handle, lock)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot write the results file: {exc.strerror}") from None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            self.close()
        except LedgerError:
            if exc_type is None:
                raise  # else the error already on its way (e.g. a full disk) says it all

    def close(self) -> None:
        """Flush, sync and release the lock (released whatever happens)."""
        try:
            if not self._handle.closed:
                try:
                    _sync(self._handle)
                finally:
                    with contextlib.suppress(OSError):  # bytes a failed append left behind
                        self._handle.close()
        except OSError as exc:
            raise LedgerError(
                f"{self.path}: cannot write the results file: {exc.strerror}"
            ) from None
        finally:
            self._lock.release()

    def record(self, key: str, changes: Mapping[str, object], *, durable: bool = False) -> Record:
        """Append the new state of ``key`` (its previous state updated by ``changes``).

        ``durable`` fsyncs before returning: used for the intent written before a create.
        """
        state = dict(self.states.get(key, {}))
        state.update({name: _text(value) for name, value in changes.items()})
        state["key"] = key
        state["timestamp"] = utc_now()
        self.states[key] = state
        try:
            self._handle.write(_encode_line([state.get(c, "") for c in self.header]))
            self._handle.flush()
            if durable:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise LedgerError(
                f"{self.path}: cannot append to the results file: {exc.strerror}"
            ) from None
        return state

    def job_ids(self) -> set[str]:
        """Every job id the ledger knows, to avoid claiming one twice when reconciling."""
        return {s["job_id"] for s in self.states.values() if s.get("job_id")}


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _encode_line(values: Iterable[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _parse(path: Path) -> tuple[list[str], dict[str, Record], int]:
    """Header, the latest state of every key, and the byte offset where whole lines end.

    The file is read line by line and each key keeps only its latest line, so memory holds
    one state per row, never the file's text or its superseded lines.
    """
    try:
        with path.open("rb") as handle:
            return _parse_lines(path, handle)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the results file: {exc.strerror}") from None


def _parse_lines(path: Path, handle: BinaryIO) -> tuple[list[str], dict[str, Record], int]:
    reader = _Lines(path, handle)
    records = csv.reader(reader)
    try:
        header = next(records)
    except (StopIteration, csv.Error):
        header = []
    if "key" not in header or "status" not in header:
        raise LedgerError(f"{path}: not a batchgen results file (no key/status header)")
    states: dict[str, Record] = {}
    shared: dict[str, str] = {}  # one object per repeated short value: status, model, size…
    whole = reader.consumed
    torn_at: int | None = None  # the record a crash tore: it must be the last one
    try:
        for number, values in enumerate(records, start=2):
            if len(values) != len(header) or not reader.ends_line:
                torn_at = torn_at or number
                continue
            if torn_at is not None:
                raise LedgerError(
                    f"{path}: record {torn_at} is not a whole results line, yet more follow "
                    "(was the file edited?): fix or remove that line; nothing was changed"
                )
            record = {
                name: _share(shared, value) for name, value in zip(header, values, strict=True)
            }
            if record.get("key"):
                states[record["key"]] = record
            whole = reader.consumed
    except csv.Error:
        pass  # an unterminated quote at the end: a torn line
    return header, states, whole


def _share(shared: dict[str, str], value: str) -> str:
    """The one object kept for a short value; long ones (prompts, ids) are left alone."""
    return shared.setdefault(value, value) if len(value) <= SHARED_CHARS else value


class _Lines:
    """The file's lines as text for :mod:`csv`, counting the bytes consumed so far."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self._path = path
        self._handle = handle
        self.consumed = 0
        self.ends_line = True

    def __iter__(self) -> Iterator[str]:
        for raw in self._handle:  # split at b"\n" only; a quoted lone \r stays inside
            line = raw[len(BOM) :] if self.consumed == 0 and raw.startswith(BOM) else raw
            self.consumed += len(raw)
            self.ends_line = raw.endswith(b"\n")
            try:
                # a line torn by a crash may end inside a character; it is dropped anyway
                yield line.decode("utf-8", errors="strict" if self.ends_line else "replace")
            except UnicodeDecodeError:
                raise LedgerError(
                    f"{self._path}: not a batchgen results file (not UTF-8)"
                ) from None


def _truncate(path: Path, end: int) -> None:
    if path.stat().st_size > end:
        with path.open("r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
