"""Writing a download's body to a file, resumably.

A body streams into ``<dest>.part``, renamed to ``dest`` only when whole, so a crash or a
cut connection never leaves a truncated file under its final name. A ``.part`` left by an
earlier try (a cut connection, a crash, an earlier run) is continued rather than fetched
again: the request asks for the rest (:func:`resume_headers`), a ``206 Partial Content``
whose ``Content-Range`` starts where the part ends is appended, and a ``200`` (the server
ignored Range) replaces the part. Relays' content proxies cut large downloads mid-stream
(new-api gives up on its upstream after 60 s, shared/reference/relays.md): starting from
byte 0 each time could never finish a video longer than the cut.

A file is renamed only at the size the server announced (the ``Content-Range`` total, or a
``200``'s Content-Length); a shorter one stays ``.part`` and the try counts as cut
(:class:`RetryableError`), so the next try resumes it.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import hdrs

from batchgen.errors import RetryableError

CHUNK_BYTES = 256 * 1024
PARTIAL_CONTENT = 206
RANGE_NOT_SATISFIABLE = 416
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


@dataclass(frozen=True)
class Download:
    """A finished download: where it is, how big, and its sha256."""

    path: Path
    size_bytes: int
    sha256: str


def part_path(dest: Path) -> Path:
    """Where ``dest`` is written until it is whole."""
    return dest.with_name(dest.name + ".part")


def resume_headers(dest: Path) -> dict[str, str]:
    """``Range: bytes=N-`` when an earlier try left N > 0 bytes of ``dest``, else nothing.

    The bytes are asked for unencoded: a range of a gzip-encoded body is a range of the
    compressed bytes, which cannot be appended to the decoded ones already on disk.
    """
    size = _size(part_path(dest))
    if not size:
        return {}
    return {hdrs.RANGE: f"bytes={size}-", hdrs.ACCEPT_ENCODING: "identity"}


def discard_part(dest: Path) -> None:
    """Forget what earlier tries wrote of ``dest``: the next try starts from byte 0."""
    with suppress(FileNotFoundError):
        part_path(dest).unlink()


async def write_body(response: aiohttp.ClientResponse, dest: Path) -> Download:
    """Write ``response``'s body to ``dest`` through ``dest.part``, renamed when whole.

    A ``206`` is appended to the part when its range starts where the part ends; any other
    success status starts the part over. Raises :class:`RetryableError`, keeping the part
    for the next try, when the body ends short of the announced size; a cut connection
    raises from aiohttp, also keeping the part.
    """
    partial = part_path(dest)
    offset, total = _placement(response, dest)
    digest = _digest_of(partial, offset)
    size = offset
    with partial.open("ab" if offset else "wb") as out:
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    _check_whole(dest, size, total)
    partial.replace(dest)
    return Download(dest, size, digest.hexdigest())


def _placement(response: aiohttp.ClientResponse, dest: Path) -> tuple[int, int | None]:
    """Where this body starts in the file, and the file's whole size when announced."""
    if response.status != PARTIAL_CONTENT:
        return 0, _announced_length(response)
    have = _size(part_path(dest))
    match = _CONTENT_RANGE.fullmatch(response.headers.get(hdrs.CONTENT_RANGE, "").strip())
    if match is None or int(match[1]) != have:
        # Bytes from somewhere else in the file: appending them would corrupt it.
        discard_part(dest)
        got = response.headers.get(hdrs.CONTENT_RANGE, "no Content-Range")
        raise RetryableError(
            f"the download answered 206 with {got!r}, not the bytes from {have} asked for; "
            "the next try starts over",
            status=PARTIAL_CONTENT,
        )
    return have, None if match[3] == "*" else int(match[3])


def _announced_length(response: aiohttp.ClientResponse) -> int | None:
    """A whole body's Content-Length, unless it is encoded (then it counts other bytes)."""
    encoding = response.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    return response.content_length if encoding in ("", "identity") else None


def _check_whole(dest: Path, size: int, total: int | None) -> None:
    """Raise :class:`RetryableError` unless ``size`` is the announced ``total`` (if any)."""
    if total is None or size == total:
        return
    if size > total:  # more than the whole: the part was not this file's start
        discard_part(dest)
        raise RetryableError(
            f"the download has {size} bytes, more than the {total} announced; "
            "the next try starts over"
        )
    raise RetryableError(
        f"the download stopped at {size} of {total} bytes; the next try resumes it"
    )


def _digest_of(partial: Path, length: int) -> hashlib._Hash:
    """The sha256 of the first ``length`` bytes already in ``partial``, to continue."""
    digest = hashlib.sha256()
    if length:
        with partial.open("rb") as existing:
            while block := existing.read(CHUNK_BYTES):
                digest.update(block)
    return digest


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
