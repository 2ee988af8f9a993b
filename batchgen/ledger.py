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
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, TypeVar, overload

from filelock import FileLock, Timeout

from batchgen import seal
from batchgen.columns import FIXED_COLUMNS
from batchgen.errors import LedgerError, LockHeldError
from batchgen.short_values import ShortValues

BOM = seal.BOM
SAMPLE_ROWS = 61  # the short values of every 61st row are the ones kept once (_snapshots)

#: A row's state: every column of its latest line, by name (a dict once appended to).
Record = Mapping[str, str]
#: Told ``(key, new state)`` after each line the ledger appends (see :meth:`Ledger.on_change`).
Listener = Callable[[str, Mapping[str, str]], None]

logger = logging.getLogger("batchgen")


def utc_now() -> str:
    """The timestamp format of the ledger: ISO 8601 UTC with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def epoch_of(timestamp: str) -> float | None:
    """Seconds since the epoch of a ledger timestamp (:func:`utc_now`), None if it is not one."""
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


def default_results_path(manifest_path: Path) -> Path:
    """``<manifest name>.results.csv`` beside the manifest."""
    return manifest_path.with_name(f"{manifest_path.stem}.results.csv")


def read_ledger(path: Path) -> dict[str, Record]:
    """The latest state of every key in an existing results file (empty if there is none).

    Raises :class:`LedgerError` when the file is not the one batchgen wrote (see
    :mod:`batchgen.seal`) or does not parse.
    """
    if not path.exists():
        return {}
    real = path.resolve()
    sealed = _check_seal(path, real)
    _header, states, _end = _parse(path, sealed.length)
    return states


def lock_results(path: Path) -> FileLock:
    """Take the lock of the results file ``path``: one run per file, however it is reached.

    The lock is named after the resolved path, so a symlink or a relative path to the same
    file meets the same lock. Raises :class:`LockHeldError` when another run holds it.
    """
    real = path.resolve()
    lock_path = real.with_name(f"{real.name}.lock")
    try:
        # filelock reports some failures as contention (ENOENT) and lets others escape
        # (EACCES): creating the lock file first says plainly that the folder is the problem.
        lock_path.touch(exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot create files in {path.parent}: {exc.strerror}") from None
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockHeldError(
            f"{path}: another batchgen run is using this results file "
            f"(lock {lock_path}); wait for it to finish"
        ) from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot lock {lock_path}: {exc.strerror}") from None
    return lock


def _check_seal(path: Path, real: Path) -> seal.Digest:
    """The digest of the sealed part of ``path``; an error if the file changed or is gone."""
    found = seal.load_seal(real)
    try:
        exists = real.exists() and real.stat().st_size > 0
        if found is not None and found.length > 0 and not exists:
            raise seal.changed_error(
                path, f"it is gone or empty, where batchgen wrote {found.length:,} bytes"
            )
        return seal.verify(real, found) if exists else seal.Digest()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the results file: {exc.strerror}") from None


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
        sealer: seal.Sealer,
    ) -> None:
        self.path = path
        self.header = tuple(header)
        self.states = states
        self._handle = handle
        self._lock = lock
        self._sealer = sealer
        self._listeners: list[Listener] = []

    @classmethod
    def open(cls, path: Path, passthrough: Sequence[str] = ()) -> Ledger:
        """Lock ``path`` for this run, check its seal, read it, repair a torn last line, and
        open it for appends.

        Raises :class:`LockHeldError` when another run holds it, :class:`LedgerError` when
        it is not the file batchgen wrote.
        """
        if path.parent.exists() and not path.parent.is_dir():
            raise LedgerError(f"{path}: {path.parent} is a file, not a folder")
        if not path.parent.is_dir():
            raise LedgerError(f"{path}: the folder {path.parent} does not exist")
        lock = lock_results(path)
        try:
            return cls._open_locked(path, passthrough, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(cls, path: Path, passthrough: Sequence[str], lock: FileLock) -> Ledger:
        real = path.resolve()
        digest = _check_seal(path, real)
        try:
            if real.exists() and real.stat().st_size > 0:
                header, states, end = _parse(path, digest.length)
                _truncate(real, end)
                if digest.length == 0:
                    logger.info(
                        "%s: no seal beside it (an older batchgen): accepted as it "
                        "is, and sealed now",
                        path,
                    )
                digest = seal.extend(real, digest, end)
                handle = real.open("ab")
                return cls._sealed(path, header, states, handle, lock, digest)
            header = list(FIXED_COLUMNS) + [c for c in passthrough if c not in FIXED_COLUMNS]
            handle = real.open("wb")
            first = BOM + encode_line(header)
            handle.write(first)
            _sync(handle)
            digest = seal.Digest()
            digest.update(first)
            return cls._sealed(path, header, {}, handle, lock, digest)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot write the results file: {exc.strerror}") from None

    @classmethod
    def _sealed(
        cls,
        path: Path,
        header: Sequence[str],
        states: dict[str, Record],
        handle: BinaryIO,
        lock: FileLock,
        digest: seal.Digest,
    ) -> Ledger:
        """The open ledger, its seal brought up to the bytes it starts from."""
        sealer = seal.Sealer(path.resolve(), digest, header)
        sealer.save()
        return cls(path, header, states, handle, lock, sealer)

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
                    self._sealer.save()
                finally:
                    with contextlib.suppress(OSError):  # bytes a failed append left behind
                        self._handle.close()
        except OSError as exc:
            raise LedgerError(
                f"{self.path}: cannot write the results file: {exc.strerror}"
            ) from None
        finally:
            self._lock.release()

    def record(
        self, key: str, changes: Mapping[str, object], *, durable: bool = False
    ) -> dict[str, str]:
        """Append the new state of ``key`` (its previous state updated by ``changes``).

        ``durable`` fsyncs before returning: used for the intent written before a create.
        """
        state = dict(self.states.get(key, {}))
        state.update({name: _text(value) for name, value in changes.items()})
        state["key"] = key
        state["timestamp"] = utc_now()
        self.states[key] = state
        line = encode_line([state.get(c, "") for c in self.header])
        try:
            self._handle.write(line)
            self._handle.flush()
            self._sealer.wrote(line)
            if durable:
                os.fsync(self._handle.fileno())
                self._sealer.checkpoint()
        except OSError as exc:
            self._sealer.failed()
            raise LedgerError(
                f"{self.path}: cannot append to the results file: {exc.strerror}"
            ) from None
        for listener in tuple(self._listeners):
            listener(key, state)
        return state

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` of every state appended from now on (e.g. a job the follower
        found final wakes the creates waiting for a running slot, with no polling); returns
        the function that stops telling it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def job_ids(self) -> set[str]:
        """Every job id the ledger knows, to avoid claiming one twice when reconciling."""
        return {s["job_id"] for s in self.states.values() if s.get("job_id")}


def _text(value: object) -> str:
    return "" if value is None else str(value)


def encode_line(values: Iterable[str]) -> bytes:
    """One results line as batchgen writes it: CSV, CRLF, UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _parse(path: Path, sealed_end: int = 0) -> tuple[list[str], dict[str, Record], int]:
    """Header, the latest state of every key, and the byte offset where whole lines end.

    The file is read line by line and each key keeps only its latest line, so memory holds
    one state per row, never the file's text or its superseded lines. Lines from
    ``sealed_end`` on are not covered by the seal and get one more check (see
    :func:`_check_appended`).
    """
    try:
        _allow_cells_up_to(size := path.stat().st_size)
        with path.open("rb") as handle:
            if 0 < sealed_end == size:
                sealed = _parse_sealed(path, handle)
                if sealed is not None:
                    return (*sealed, size)
                handle.seek(0)  # something unexpected: the line-by-line reader says what
            return _parse_lines(path, handle, sealed_end)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the results file: {exc.strerror}") from None


def _allow_cells_up_to(size: int) -> None:
    """csv refuses cells over 131,072 characters by default: a long prompt, passthrough
    cell or message must be read, not taken for a torn line. No cell is longer than the
    file; the cap keeps the value within a C long on every platform."""
    wanted = min(size + 1, 2**31 - 1)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)


def _parse_lines(
    path: Path, handle: BinaryIO, sealed_end: int
) -> tuple[list[str], dict[str, Record], int]:
    reader = _Lines(path, handle)
    records = csv.reader(reader, strict=True)  # strict: a stray quote is an error, not data
    header = _header(path, records)
    columns = {name: index for index, name in enumerate(header)}
    key_at, job_id_at = columns["key"], columns.get("job_id")
    latest: dict[str, Sequence[str]] = {}  # key -> the cells of its latest line
    whole, line = reader.consumed, reader.lines + 1  # where the next record starts
    try:
        for values in records:
            if not reader.ends_line:
                break  # the file ends without a newline: the last line was torn by a crash
            if len(values) != len(header):
                raise _bad_line(path, line, f"{len(values)} cells, the header has {len(header)}")
            key = values[key_at]
            if whole >= sealed_end and job_id_at is not None:
                _check_appended(path, line, key, latest.get(key), values, job_id_at)
            if key:
                latest[key] = tuple(values)
            whole, line = reader.consumed, reader.lines + 1
    except csv.Error as exc:
        if not reader.exhausted:
            raise _bad_line(path, line, str(exc)) from None
        # else the file ends inside a quoted cell: the last line was torn by a crash
    return header, _snapshots(columns, latest), whole


def _parse_sealed(path: Path, handle: BinaryIO) -> tuple[list[str], dict[str, Record]] | None:
    """Header and latest states of a file sealed to its last byte: whole lines batchgen
    wrote, so read in bulk, at C speed; None if it holds what batchgen never writes (then
    :func:`_parse_lines` says what and where). Lines end at line feeds only, as in _Lines."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="\n")
    try:
        records = csv.reader(text, strict=True)
        header = _header(path, records)
        columns = {name: index for index, name in enumerate(header)}
        key_at, width, latest = columns["key"], len(header), dict[str, Sequence[str]]()
        for values in records:
            if len(values) != width:
                return None
            latest[values[key_at]] = tuple(values)  # exact size: a list of 28 has room for 32
    except (csv.Error, UnicodeDecodeError):
        return None
    finally:
        text.detach()  # the handle is the caller's, to read again or close
    latest.pop("", None)  # a line without a key is no row's state
    return header, _snapshots(columns, latest)


def _snapshots(columns: Mapping[str, int], latest: dict[str, Sequence[str]]) -> dict[str, Record]:
    """Each key's latest cells as its state, ``latest`` emptied as they are taken.

    Short values repeated across rows (status, model, size…) are kept once: those of every
    61st row are learnt, and every row's cells are looked up among them in one C call, not
    one Python step per cell (2.8 million for 100,000 rows). A value repeated across many
    rows is all but certain to be on a learnt one; a stride no layout repeats with (prime,
    and odd where matrix variants alternate) keeps the sample from missing a whole kind.
    """
    short = ShortValues()
    states: dict[str, Record] = {}
    for position, key in enumerate(list(latest)):
        cells = latest.pop(key)  # popped as it is copied: no row's cells are held twice
        if position % SAMPLE_ROWS == 0:
            short.learn(cells)
        states[key] = Snapshot(columns, short.shared(cells))
    return states


def _header(path: Path, records: Iterator[list[str]]) -> list[str]:
    try:
        header = next(records)
    except (StopIteration, csv.Error):
        header = []
    if "key" not in header or "status" not in header:
        raise LedgerError(f"{path}: not a batchgen results file (no key/status header)")
    return header


def _bad_line(path: Path, line: int, detail: str) -> LedgerError:
    return LedgerError(
        f"{path}: line {line}: not a whole results line ({detail}), and not the torn last "
        "line a crash leaves (was the file edited?): fix or remove that line; nothing was "
        "changed or sent"
    )


def _check_appended(
    path: Path,
    line: int,
    key: str,
    before: Sequence[str] | None,
    values: Sequence[str],
    job_id_at: int,
) -> None:
    """A line the seal does not cover (a crash's last lines, or appended by hand) may not
    forget a job: batchgen never clears a job id, and a row without one is bought again."""
    job_id = before[job_id_at] if before is not None else ""
    if job_id and not values[job_id_at]:
        raise LedgerError(
            f"{path}: line {line}: drops the job id {job_id} of {key}, which "
            "batchgen never does (added by hand?): remove that line; nothing was sent"
        )


_Default = TypeVar("_Default")


class Snapshot(Mapping[str, str]):
    """A row's state as read from the results file: its latest line's cells by column name.

    A dict per row would do, but 100,000 of them with 28 columns take 83 MB; the cells as a
    tuple, with the column positions shared by every row of the file, take a third of that.
    Appending makes a new dict from it (:meth:`Ledger.record`), so it is never changed.
    """

    __slots__ = ("_cells", "_columns")

    def __init__(self, columns: Mapping[str, int], cells: tuple[str, ...]) -> None:
        self._columns = columns
        self._cells = cells

    def __getitem__(self, name: str) -> str:
        return self._cells[self._columns[name]]

    @overload
    def get(self, name: str, /) -> str | None: ...

    @overload
    def get(self, name: str, /, default: str | _Default) -> str | _Default: ...

    def get(self, name: str, /, default: object = None) -> object:
        """The cell of column ``name``, or ``default`` when the file has no such column."""
        index = self._columns.get(name)  # a dict's speed: plan and summary ask every row
        return default if index is None else self._cells[index]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return repr(dict(self))


class _Lines:
    """The file's lines as text for :mod:`csv`, counting the bytes consumed so far."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self._path = path
        self._handle = handle
        self.consumed = 0
        self.lines = 0
        self.ends_line = True
        self.exhausted = False  # the file's end was reached

    def __iter__(self) -> Iterator[str]:
        for raw in self._handle:  # split at b"\n" only; a quoted lone \r stays inside
            line = raw[len(BOM) :] if self.consumed == 0 and raw.startswith(BOM) else raw
            self.consumed += len(raw)
            self.lines += 1
            self.ends_line = raw.endswith(b"\n")
            try:
                # a line torn by a crash may end inside a character; it is dropped anyway
                yield line.decode("utf-8", errors="strict" if self.ends_line else "replace")
            except UnicodeDecodeError:
                raise LedgerError(
                    f"{self._path}: line {self.lines}: not a batchgen results file (not UTF-8)"
                ) from None
        self.exhausted = True


def _truncate(path: Path, end: int) -> None:
    if path.stat().st_size > end:
        with path.open("r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
