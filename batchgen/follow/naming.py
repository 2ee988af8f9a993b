"""File names for downloads: from the user's template or a default, safe on every OS, unique.

A name is chosen once per row and kept: the ledger records it (``file``, ``thumbnail``,
``spritesheet``), and every variant of a row shares one stem (``c-01.mp4``, ``c-01.webp``).
Names are compared case-insensitively, as Windows and macOS folders do, so two rows never
share a file anywhere the folder is copied to.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from batchgen.columns import ASSET_PATH_COLUMNS
from batchgen.errors import UsageError
from batchgen.ledger import Record

EXTENSIONS = {"video": ".mp4", "thumbnail": ".webp", "spritesheet": ".jpg"}
#: Fields a template may use besides the ledger's columns.
DERIVED_FIELDS = ("id", "slug")

MAX_CHARS = 100
# 255 bytes is the common limit; leave room for "-NN", the extension and ".part".
MAX_BYTES = 200
SLUG_WORDS = 4
SLUG_CHARS = 40
FALLBACK = "video"
PARTIAL_SUFFIX = ".part"

HASH_KEY = re.compile(r"h[0-9a-f]{16}-\d+")
_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')  # separators and what Windows refuses in a name
_WHITESPACE = re.compile(r"\s+")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def safe_stem(text: str, *, fallback: str = FALLBACK) -> str:
    """``text`` made into a file name (without extension) that every OS accepts.

    No path separators or characters Windows refuses, no control characters, no reserved
    device names (``CON``, ``NUL``, ``COM1`` …), no leading dot or dash (hidden files,
    options to a shell command), no trailing dot or space, at most :data:`MAX_CHARS`
    characters and :data:`MAX_BYTES` UTF-8 bytes. ``fallback`` when nothing is left.
    """
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text))  # tabs, newlines: spaces
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = " ".join(_FORBIDDEN.sub("-", text).split())
    text = _trim(_bound(text.lstrip(".- ")))
    if not text:
        return fallback
    head, dot, rest = text.partition(".")
    if head.rstrip().upper() in _WINDOWS_RESERVED:
        text = f"{head}_{dot}{rest}"  # "CON" and "con.x" are devices; "CON_", "con_.x" are not
    return text


def slug(text: str, *, words: int = SLUG_WORDS, chars: int = SLUG_CHARS) -> str:
    """The first few words of ``text``, lower-cased and joined by dashes."""
    picked = re.findall(r"\w+", text.lower())[:words]
    return "-".join(picked)[:chars].strip("-_")


def user_id(key: str) -> str:
    """The row's own ``id``: its key unless that is a content hash (``h<16 hex>-<n>``)."""
    return "" if HASH_KEY.fullmatch(key) else key


def default_stem(key: str, record: Mapping[str, str]) -> str:
    """The row's ``id`` when the user gave one, else ``row-012-first-words-of-prompt``."""
    own = user_id(key)
    if own:
        return own
    row = record.get("row", "")
    number = f"{int(row):03d}" if row.isdigit() else row
    return "-".join(part for part in ("row", number, slug(record.get("prompt", ""))) if part)


def check_template(template: str, columns: Iterable[str]) -> None:
    """Raise :class:`UsageError` unless ``template`` uses only known fields, by name.

    Fields are the results file's columns plus ``id`` and ``slug``; a format spec such as
    ``{row:0>3}`` is allowed, attribute or index access is not.
    """
    allowed = set(columns) | set(DERIVED_FIELDS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise UsageError(f"name template {template!r}: {exc}") from None
    for _literal, name, _spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or conversion is not None:
            raise UsageError(
                f"name template {template!r}: unknown field {{{name}}} "
                f"(use any of: {', '.join(sorted(allowed))})"
            )
    try:
        template.format_map(dict.fromkeys(allowed, "x"))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"name template {template!r}: {exc}") from None


def render_stem(template: str | None, key: str, record: Mapping[str, str]) -> str:
    """The safe stem for one row: the template filled with its columns, or the default."""
    fallback = safe_stem(default_stem(key, record))
    if not template:
        return fallback
    fields = {"id": user_id(key), "slug": slug(record.get("prompt", "")), **record, "key": key}
    return safe_stem(template.format_map(_Blank(fields)), fallback=fallback)


class FileNamer:
    """Hands out one stem per row in one folder, never the same one to two rows.

    Taken are the stems already recorded for other rows in the ledger and the names of
    files already in the folder (a file batchgen did not record is never overwritten);
    a clash gets ``-2``, ``-3`` …. A row that already has a recorded file keeps its stem.
    """

    def __init__(
        self,
        folder: Path,
        template: str | None,
        states: Mapping[str, Record],
        columns: Sequence[str],
    ) -> None:
        if template:
            check_template(template, columns)
        self.folder = folder
        self._template = template
        self._owner: dict[str, str] = {}  # case-folded stem -> key ("" for unknown files)
        for key, record in states.items():
            stem = recorded_stem(record)
            if stem:
                self._owner[stem.casefold()] = key
        for name in _names_in(folder):
            self._owner.setdefault(Path(name).stem.casefold(), "")

    def stem_for(self, key: str, record: Mapping[str, str]) -> str:
        """The stem of ``key``'s files: the recorded one, else a new unique one."""
        stem = recorded_stem(record)
        if stem:
            return stem
        base = render_stem(self._template, key, record)
        for number in range(1, 1_000_000):
            candidate = _numbered(base, number)
            owner = self._owner.get(candidate.casefold())
            if owner is None or owner == key:
                self._owner[candidate.casefold()] = key
                return candidate
        raise UsageError(f"{self.folder}: no free file name for {base!r}")

    def path(self, stem: str, variant: str) -> Path:
        """Where ``variant`` of the row with ``stem`` goes in the folder."""
        return self.folder / f"{stem}{EXTENSIONS[variant]}"


def recorded_stem(record: Mapping[str, str]) -> str:
    """The stem of a file the ledger already records for this row ('' when none)."""
    for column in ASSET_PATH_COLUMNS:
        if record.get(column):
            return Path(record[column]).stem
    return ""


class _Blank(dict[str, str]):
    """Template fields; a column this row lacks is blank rather than an error."""

    def __missing__(self, name: str) -> str:
        return ""


def _numbered(base: str, number: int) -> str:
    if number == 1:
        return base
    suffix = f"-{number}"
    return _trim(_bound(base, MAX_CHARS - len(suffix), MAX_BYTES - len(suffix))) + suffix


def _bound(text: str, chars: int = MAX_CHARS, max_bytes: int = MAX_BYTES) -> str:
    text = text[:chars]
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


def _trim(text: str) -> str:
    return text.rstrip(". ")  # Windows drops trailing dots and spaces: "a." would become "a"


def _names_in(folder: Path) -> list[str]:
    """Names in ``folder`` that are whole files (our ``.part`` leftovers are fair game)."""
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if not p.name.endswith(PARTIAL_SUFFIX)]
