"""Proving, before anything is bought, that every path a run will write can be written.

``mkdir(exist_ok=True)`` succeeds on a read-only mount, and a summary written at the end
of a night fails only after the night's creates were paid for; so each folder is tried
with a real file, created and removed again, before the first request.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from batchgen.errors import UsageError


def check_writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write a scratch file in it; :class:`UsageError` if not.

    ``what`` names what goes there, for the user ("the downloaded videos").
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".batchgen-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"{folder}: cannot write {what} there: {_reason(exc)}") from None


def check_writable_file(path: Path, what: str) -> None:
    """Refuse a file that could not be (re)written: its folder must take new files, and an
    existing file must be writable. The file itself is not touched."""
    check_writable_folder(path.parent, what)
    if path.is_dir():
        raise UsageError(f"{path}: cannot write {what}: it is a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{path}: cannot write {what}: permission denied")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
