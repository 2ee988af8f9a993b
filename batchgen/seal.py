"""Is the results file still the one batchgen wrote? The seal beside it says.

The results file is the only record of what was paid for. A spreadsheet that deletes the
``job_id`` column, sorts the rows or turns ``001`` into ``1`` and saves over it would make
the next run buy rows again, so batchgen keeps ``<results>.seal.json`` beside the file: the
length, the number of lines, the header and the sha256 of the bytes it wrote. A file whose
first ``length`` bytes no longer hash to the seal is refused, with what changed and how to
proceed (restore it, or ``batchgen repair``).

Bytes after the sealed ones are accepted when they are whole results lines: the seal is
brought up to date at most once a second (and when the ledger closes), so a crash leaves
lines the seal does not cover yet, and batchgen cannot tell those from lines appended by
hand. Appending is the one edit that rewrites no history: earlier lines stay as written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from batchgen.errors import LedgerError

SEAL_VERSION = 1
RESEAL_SECONDS = 1.0  # how stale the seal may get while appends go on
CHUNK_BYTES = 1024 * 1024
BOM = "\ufeff".encode()


@dataclass(frozen=True)
class Seal:
    """What batchgen wrote to a results file, as of its last update."""

    length: int
    lines: int
    sha256: str
    header: tuple[str, ...]


def seal_path(results: Path) -> Path:
    """``night.results.csv`` -> ``night.results.seal.json``, beside it."""
    return results.with_name(f"{results.stem}.seal.json")


class Digest:
    """The running length, line count and sha256 of the bytes of a results file."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.length = 0
        self.lines = 0

    def update(self, data: bytes) -> None:
        """Count ``data`` as the next bytes of the file."""
        self._hash.update(data)
        self.length += len(data)
        self.lines += data.count(b"\n")

    def seal(self, header: Sequence[str]) -> Seal:
        """The seal of the bytes counted so far."""
        return Seal(self.length, self.lines, self._hash.hexdigest(), tuple(header))


def load_seal(results: Path) -> Seal | None:
    """The seal beside ``results``; None when there is none (a file of an older batchgen)."""
    path = seal_path(results)
    try:
        data = json.loads(path.read_text("utf-8"))
        return Seal(
            int(data["length"]), int(data["lines"]), str(data["sha256"]), tuple(data["header"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LedgerError(
            f"{results}: its seal {path.name} is unreadable ({type(exc).__name__}), so batchgen "
            f"cannot tell whether the results file is the one it wrote; nothing was sent. "
            f"Run `batchgen repair {results}` to rebuild and reseal it"
        ) from None


def save_seal(results: Path, seal: Seal) -> None:
    """Write the seal beside ``results`` atomically (a crash leaves the old one or the new)."""
    path = seal_path(results)
    temporary = path.with_name(path.name + ".tmp")
    data = json.dumps({"version": SEAL_VERSION, **asdict(seal)}) + "\n"
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise LedgerError(f"{results}: cannot write its seal {path.name}: {exc.strerror}") from None


def verify(results: Path, seal: Seal | None) -> Digest:
    """The digest of the sealed bytes of ``results``, checked against ``seal``.

    Raises :class:`LedgerError` saying what changed when they differ. Without a seal, the
    digest is empty: the caller hashes the whole file with :func:`extend`.
    """
    digest = Digest()
    if seal is None:
        return digest
    size = results.stat().st_size
    if size >= seal.length:
        _hash_range(results, digest, seal.length)
        if (digest.length, digest.lines, digest.seal(seal.header).sha256) == (
            seal.length,
            seal.lines,
            seal.sha256,
        ):
            return digest
    raise changed_error(results, describe_change(results, seal))


def extend(results: Path, digest: Digest, end: int) -> Digest:
    """``digest`` carried on to byte ``end`` (hashed afresh when ``end`` is before it)."""
    if end < digest.length:
        digest = Digest()
    _hash_range(results, digest, end)
    return digest


def _hash_range(results: Path, digest: Digest, end: int) -> None:
    with results.open("rb") as handle:
        handle.seek(digest.length)
        while digest.length < end:
            chunk = handle.read(min(CHUNK_BYTES, end - digest.length))
            if not chunk:
                break
            digest.update(chunk)


def changed_error(results: Path, what: str) -> LedgerError:
    """The error for a results file another program rewrote: what changed, what to do."""
    return LedgerError(
        f"{results}: changed since batchgen wrote it: {what}. batchgen can no longer tell "
        "from it what was already paid for, so nothing was sent. Restore the file batchgen "
        f"wrote (from a backup), or run `batchgen repair {results}` to rebuild it: every row "
        "that ever had a job stays paid, and the changed file is kept as a .bak"
    )


def describe_change(results: Path, seal: Seal) -> str:
    """What another program did to the file, as far as its bytes tell."""
    size = results.stat().st_size
    if size == 0:
        return f"it is empty, where batchgen wrote {seal.length:,} bytes"
    with results.open("rb") as handle:
        first = handle.readline(CHUNK_BYTES)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""))
    lines += first.count(b"\n")
    for found in (_encoding_change(first), _header_change(first, seal.header)):
        if found:
            return found
    if lines < seal.lines:
        return f"lines were removed ({lines:,} left of the {seal.lines:,} batchgen wrote)"
    if size < seal.length:
        return f"it is shorter than what batchgen wrote ({size:,} bytes, not {seal.length:,})"
    return "cells were edited or rows reordered (same columns, different content)"


def _encoding_change(first: bytes) -> str:
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it was re-encoded as UTF-16"
    if not first.startswith(BOM):
        try:
            first.decode("utf-8")
        except UnicodeDecodeError:
            return "it was re-encoded (it is no longer UTF-8)"
        return "it was re-saved without its UTF-8 byte-order mark (re-encoded)"
    if not first.endswith(b"\r\n"):
        return "its line endings were changed"
    return ""


def _header_change(first: bytes, sealed: Sequence[str]) -> str:
    text = first[len(BOM) :].decode("utf-8", errors="replace")
    header = next(csv.reader(io.StringIO(text)), [])
    missing = [c for c in sealed if c not in header]
    added = [c for c in header if c not in sealed]
    parts = []
    if missing:
        parts.append("columns removed: " + ", ".join(missing))
    if added:
        parts.append("columns added: " + ", ".join(added))
    if not parts and list(header) != list(sealed):
        parts.append("its columns were reordered")
    return "; ".join(parts)


class Sealer:
    """Keeps the seal of an open results file up to date as lines are appended."""

    def __init__(self, results: Path, digest: Digest, header: Sequence[str]) -> None:
        self._results = results
        self._digest = digest
        self._header = tuple(header)
        self._saved_at = float("-inf")
        self._broken = False

    def wrote(self, data: bytes) -> None:
        """``data`` was appended to the file (written and flushed)."""
        self._digest.update(data)

    def failed(self) -> None:
        """An append failed: what reached the disk is unknown, so the seal stays where it
        was; lines after it are checked as whole results lines on the next open."""
        self._broken = True

    def checkpoint(self) -> None:
        """After an fsync of the file: update the seal if the last update is over a second old."""
        if time.monotonic() - self._saved_at >= RESEAL_SECONDS:
            self.save()

    def save(self) -> None:
        """Write the seal of everything appended so far (only after the file was synced)."""
        if not self._broken:
            save_seal(self._results, self._digest.seal(self._header))
            self._saved_at = time.monotonic()
