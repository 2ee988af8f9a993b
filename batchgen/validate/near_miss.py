"""Telling a misspelt column name from a column of the team's own.

A column batchgen does not know is carried through into the results unchanged (campaign,
owner, notes). A misspelt one would be carried through too, and the row sent without it:
``sceonds: 8`` leaves the video at the default 4 seconds, and it is paid for. So a name
*close* to a column batchgen understands is taken for a mistake.

The rule, on names folded by ignoring case, spaces, ``_`` and ``-``:

* a name equal to a known column once folded (``Image Fit``, ``remix-of``) means it;
* a common synonym means its column: ``duration``, ``length`` -> ``seconds``;
  ``resolution``, ``dimensions`` -> ``size``; ``image_path``, ``reference`` -> ``image``;
  ``text``, ``description`` -> ``prompt``;
* otherwise a name is a near miss of a known column when their edit distance is at most
  0 for names of up to 4 letters, 1 for names of 5 letters, and 2 for longer names.

The distance is the optimal string alignment distance (Levenshtein plus the swap of two
neighbouring letters), so ``sceonds`` is 1 from ``seconds`` and ``modle`` 1 from
``model``: both are near misses, as is ``promt``. Names of up to 4 letters are never near
misses but by folding, because short words are close to each other by chance: ``mode`` is
1 from ``model``, ``tags`` 2 from ``takes``, ``time`` 2 from ``size``, and all three are
plausible columns of a team's own.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Words people use for a column batchgen names otherwise (folded, see :func:`fold`).
SYNONYMS = {
    "duration": "seconds",
    "length": "seconds",
    "resolution": "size",
    "dimensions": "size",
    "dimension": "size",
    "imagepath": "image",
    "reference": "image",
    "referenceimage": "image",
    "text": "prompt",
    "description": "prompt",
}


def fold(name: str) -> str:
    """``name`` compared loosely: case, spaces, ``_`` and ``-`` do not matter."""
    return "".join(char for char in name.lower() if char not in " _-\t")


def allowed_distance(length: int) -> int:
    """How many edits a name of ``length`` letters may be from a known one and still be
    taken for it (see the module's docstring for why short names get none)."""
    if length <= 4:
        return 0
    return 1 if length == 5 else 2


def distance(a: str, b: str) -> int:
    """The optimal string alignment distance: insertions, deletions, substitutions and
    swaps of two neighbouring characters each count 1."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, previous2[j - 2] + 1)
            current.append(best)
        previous2, previous = previous, current
    return previous[-1]


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is probably a misspelling of, or None.

    ``name`` itself being known is not a miss. Of several candidates the nearest wins,
    then the first given.
    """
    candidates = list(known)
    if name in candidates:
        return None
    folded = fold(name)
    limit = allowed_distance(len(folded))
    best: tuple[int, str] | None = None
    for candidate in candidates:
        gap = distance(folded, fold(candidate))
        if gap <= limit and (best is None or gap < best[0]):
            best = (gap, candidate)
    return None if best is None else best[1]


def probable_column(name: str, known: Iterable[str]) -> str | None:
    """The known column ``name`` probably means (by spelling or synonym), or None."""
    candidates = list(known)
    if name in candidates:
        return None
    synonym = SYNONYMS.get(fold(name))
    if synonym in candidates:
        return synonym
    return closest(name, candidates)
