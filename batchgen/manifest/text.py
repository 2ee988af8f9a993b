"""Decoding a text manifest's bytes: byte-order marks, strict UTF-8, GB18030 from
Chinese-locale Excel, and a clear refusal (naming the byte) for anything else."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from batchgen.manifest.table import Unreadable

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class BadBytes(Unreadable):
    """Bytes that are not text in the file's encoding. ``text`` is the file decoded as UTF-8
    with every undecodable byte kept as a lone surrogate; ``index`` is the first of them, so
    the reader can say in which row and cell it is."""

    def __init__(self, message: str, text: str, index: int) -> None:
        super().__init__(message)
        self.text = text
        self.index = index


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or :class:`Unreadable` saying in words why they cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise Unreadable("file not found") from None
    except IsADirectoryError:
        raise Unreadable("is a folder, not a file") from None
    except OSError as exc:
        raise Unreadable(f"cannot read the file: {exc.strerror}") from None


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """Text of a file: BOM (UTF-8, UTF-16) first, else ``encoding`` (a YAML wrapper's
    ``encoding:``) strictly, else strict UTF-8, else GB18030.

    GB18030 is what Excel writes as "CSV" on a Chinese-locale Windows; it is a superset of
    GBK and GB2312. A byte-order mark outranks ``encoding``: it cannot be there by chance.
    """
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data, bom_encoding)
    if encoding is not None:
        return _checked(_decode_as(data, encoding))
    if data.startswith(b"PK\x03\x04"):
        raise Unreadable("is a zip file (an Excel workbook?), not text: name it .xlsx")
    if b"\x00" in data:
        raise Unreadable(
            "is binary, not text (it contains NUL bytes); if it is UTF-16 without a "
            "byte-order mark, save it as UTF-8"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _decode_legacy(data)
    return _checked(text)


#: A run of bytes outside ASCII, and a GB18030 character (two bytes, or four with digits).
_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_GB_CHARACTER = re.compile(rb"[\x81-\xfe](?:[\x30-\x39][\x81-\xfe][\x30-\x39]|[\x40-\xfe])")


def _decode_legacy(data: bytes) -> str:
    """A file that is not UTF-8: GB18030 when it looks like Chinese text, else an error
    naming the first byte that is not UTF-8.

    GB18030 decodes almost any byte soup, so it is not a fallback to take on trust: a UTF-8
    file with a few rows pasted from a Windows-1252 file, or a whole Windows-1252 file,
    would come out as plausible-looking Chinese characters and be paid for as prompts.
    """
    escaped = data.decode("utf-8", errors="surrogateescape")
    index = next(i for i, char in enumerate(escaped) if is_escaped_byte(char))
    byte = f"0x{ord(escaped[index]) - 0xDC00:02X}"
    utf8_runs = other_runs = 0
    for run in _HIGH_RUN.finditer(data):
        try:
            run.group().decode("utf-8")
            utf8_runs += 1
        except UnicodeDecodeError:
            other_runs += 1
    # Chinese text in GB18030 is valid UTF-8 only by chance, in a few short runs; a file
    # where most non-ASCII runs are UTF-8 is a UTF-8 file with some foreign bytes in it.
    if utf8_runs >= other_runs:
        raise BadBytes(
            f"byte {byte} is not UTF-8, unlike the rest of the file: it mixes text encodings "
            "(rows pasted from another file?); retype this cell and save the file as CSV UTF-8",
            escaped,
            index,
        )
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is None or not _looks_like_gb18030(data):
        raise BadBytes(
            f"byte {byte} is not UTF-8 (nor GB18030, as Excel writes on Chinese Windows): "
            "save the file as CSV UTF-8, or name its encoding in a YAML wrapper "
            "(source: this file, encoding: cp1252)",
            escaped,
            index,
        )
    return text


def _looks_like_gb18030(data: bytes) -> bool:
    """Chinese characters in GB18030 have a trail byte above ASCII (the GB2312 area) but for
    rare ones; a Windows-1252 "é" or "è" before an ASCII letter makes an ASCII-trailed pair."""
    characters = _GB_CHARACTER.findall(data)
    ascii_trailed = sum(1 for char in characters if len(char) == 2 and char[1] < 0x80)
    return ascii_trailed * 10 <= len(characters)


def is_escaped_byte(char: str) -> bool:
    """Whether ``char`` stands for an undecodable byte (``surrogateescape``)."""
    return "\udc80" <= char <= "\udcff"


def _checked(text: str) -> str:
    if not text.strip():
        raise Unreadable("the file is empty")
    if "\x00" in text:
        raise Unreadable("is binary, not text (it contains NUL characters)")
    return text


def _decode(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise Unreadable(
            f"is not readable text (it starts with a {encoding} byte-order mark, but is not "
            f"{encoding}); save it as CSV UTF-8"
        ) from None
    return _checked(text)


def check_encoding(name: str) -> str | None:
    """Why ``name`` is not a text encoding Python knows, or None when it is."""
    try:
        codecs.lookup(name)
    except LookupError:
        return f"unknown encoding {name!r}; for example utf-8, cp1252, latin-1, gb18030"
    return None


def _decode_as(data: bytes, encoding: str) -> str:
    """``data`` in the encoding the user named; a byte it cannot hold is located."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        byte = f"0x{data[exc.start]:02X}"
        message = f"byte {byte} is not {encoding} (the encoding: setting): is that its encoding?"
    try:
        escaped = data.decode(encoding, errors="surrogateescape")
    except UnicodeDecodeError:  # only bytes from 0x80 can be escaped (not in UTF-16, say)
        raise Unreadable(message) from None
    index = next(i for i, char in enumerate(escaped) if is_escaped_byte(char))
    raise BadBytes(message, escaped, index)
