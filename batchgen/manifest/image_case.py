"""Image paths that differ only by case from a file that exists.

A sheet made on a Mac or Windows machine (case-insensitive file systems) can say
``Images/Fuji-Portrait.JPG`` for ``images/fuji-portrait.jpg``. On Linux those are two
different names, and a folder may even hold both ``a.jpg`` and ``A.jpg``; so batchgen does
not guess (a guess could pay for a video of the wrong image): it refuses the row and names
the file or files that do exist, and the user fixes the cell once.
"""

from __future__ import annotations

import os
from pathlib import Path

#: At most this many candidates are shown; a folder of near-identical names needs no more.
_MAX_CANDIDATES = 5


def case_variants(root: Path, missing: Path) -> list[Path]:
    """Existing files inside ``root`` whose path matches ``missing`` ignoring case.

    ``missing`` is a resolved path inside ``root`` that does not exist. Every component is
    matched on its own (an exact name wins over a case variant), so both the folder and the
    file name may differ by case. Candidates that resolve outside ``root`` are left out.
    """
    real_root = root.resolve()
    found = [real_root]
    for part in missing.relative_to(real_root).parts:
        found = [match for folder in found for match in _matches(folder, part)]
        if not found:
            return []
    return sorted(path for path in found if _usable_inside(path, real_root))[:_MAX_CANDIDATES]


def _usable_inside(path: Path, real_root: Path) -> bool:
    """A file that resolves inside ``real_root`` (a symlink out of it is never suggested)."""
    try:
        return path.resolve().is_relative_to(real_root) and path.is_file()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop on Python < 3.13
        return False


def _matches(folder: Path, part: str) -> list[Path]:
    """Entries of ``folder`` named ``part``: the exact one if it exists, else its case variants."""
    exact = folder / part
    if exact.exists():
        return [exact]
    try:
        names = os.listdir(folder)
    except OSError:  # not a folder, or unreadable: nothing to suggest from here
        return []
    wanted = part.casefold()
    return [folder / name for name in sorted(names) if name.casefold() == wanted]


def did_you_mean(root: Path, cell: str, variants: list[Path]) -> str:
    """``file not found; did you mean X?``, each candidate shown as the cell would write it."""
    real_root = root.resolve()
    shown = [
        str(path) if Path(cell).is_absolute() else path.relative_to(real_root).as_posix()
        for path in variants
    ]
    return f"file not found; did you mean {' or '.join(shown)}?"
