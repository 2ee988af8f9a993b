"""One card of the HTML contact sheet: a row's picture, video, team columns and next step.

Everything from the ledger is escaped (prompts and team columns are user text); images are
embedded as ``data:`` URIs; the only thing a card points at is the row's own video file, by
a path relative to the page, so it plays inline when the page is opened from disk.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from html import escape
from pathlib import Path

from PIL import Image

from batchgen.next_steps import next_step
from batchgen.report.summary import ReportRow, human_bytes, relative_link
from batchgen.status import ATTENTION, BUSY, DONE, Status

#: Thumbnail files larger than this are not read at all (a placeholder says so).
MAX_THUMBNAIL_BYTES = 20_000_000
#: Longest side, in pixels, of an embedded thumbnail: sharp on a 2x screen at card width.
THUMBNAIL_SIDE = 640
#: Longest side of the reference image shown beside the result: a small inset.
REFERENCE_SIDE = 240

# formats every browser shows, by Pillow's name
_EMBEDDABLE = {"WEBP": "image/webp", "PNG": "image/png", "JPEG": "image/jpeg"}


@dataclass(frozen=True)
class CardContext:
    """Where a card's paths lead: the page's folder, and where reference images are."""

    folder: Path  # the page's folder: video links are relative to it
    image_bases: tuple[Path, ...]  # folders a relative ``image`` cell may be relative to
    columns: tuple[str, ...]  # the team's (passthrough) columns, shown on every card


def e(text: str) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return escape(text, quote=True)


def tone(status: str) -> str:
    """The colour family of a status badge: ``ok``, ``busy``, ``bad`` or ``muted``."""
    if status in DONE:
        return "ok"
    if status in BUSY:
        return "busy"
    return "bad" if status in ATTENTION else "muted"


def thumbnail_uri(path: Path | None, side: int = THUMBNAIL_SIDE) -> str | None:
    """``path`` as a ``data:`` URI, or None when missing, too large or not an image.

    Images larger than ``side`` are scaled down first: a page of hundreds of cards must
    stay light enough to open on a phone.
    """
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_THUMBNAIL_BYTES:
            return None
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if image.format in _EMBEDDABLE and max(image.size) <= side:
                return _data_uri(_EMBEDDABLE[image.format], data)
            return _data_uri("image/webp", _shrink(image, side))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # unreadable or not an image: the card shows a placeholder


def _shrink(image: Image.Image, side: int) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((side, side))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80)
    return out.getvalue()


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def time_element(iso: str) -> str:
    """A ``<time>`` the page's script shows in the reader's zone; UTC in its title."""
    return f'<time datetime="{e(iso)}" title="{e(iso)} (UTC)">{e(iso)}</time>'


def card(row: ReportRow, context: CardContext) -> str:
    """The ``<article>`` of one row."""
    attention = "true" if row.needs_attention else "false"
    return (
        f'<article class="card" data-status="{e(row.status)}" data-attention="{attention}">'
        f"{_frame(row, context)}"
        f'<div class="body">'
        f'<div class="meta"><span class="badge tone-{tone(row.status)}">{e(row.status)}</span>'
        f'<span class="where" title="{e(row.get("job_id"))}">{e(_where(row))}</span></div>'
        f'<p class="prompt" title="{e(row.get("prompt"))}">{e(row.get("prompt"))}</p>'
        f"{_reason(row)}{_next(row)}{_progress(row)}{_team(row, context.columns)}"
        f"{_facts(row)}{_updated(row)}{_video_link(row, context.folder)}"
        f"</div></article>"
    )


def _where(row: ReportRow) -> str:
    return f"row {row.row} · {row.key}" if row.row is not None else row.key


def _frame(row: ReportRow, context: CardContext) -> str:
    """The picture: the thumbnail (or the video's first frame), the reference beside it."""
    thumb = thumbnail_uri(row.thumbnail)
    video = _inline_video(row, context.folder, shown=thumb is None)
    reference = _reference(row, context.image_bases)
    if thumb is not None:
        picture = f'<img class="result" src="{thumb}" alt="{e(f"thumbnail of {row.label}")}">'
    elif video:
        picture = ""  # the video element shows its own first frame
    elif reference:
        picture, reference = reference.replace('class="ref"', 'class="ref whole"'), ""
    else:
        return f'<div class="thumb placeholder"><span>{e(_placeholder_text(row))}</span></div>'
    play = '<button type="button" class="play" hidden>▶ Play</button>' if thumb and video else ""
    note = _frame_note(row) if thumb is None else ""
    return f'<div class="thumb">{picture}{video}{play}{reference}{note}</div>'


def _frame_note(row: ReportRow) -> str:
    # a thumbnail was downloaded but cannot be shown: say so over the frame shown instead
    if row.thumbnail is None:
        return ""
    return f'<span class="note">{e(_placeholder_text(row))}</span>'


def _inline_video(row: ReportRow, folder: Path, *, shown: bool) -> str:
    """A ``<video>`` of the local file; hidden behind the thumbnail until Play is pressed."""
    if row.file is None or not row.file.exists():
        return ""
    src = relative_link(row.file.resolve(), folder)
    hidden = "" if shown else " hidden"
    preload = "metadata" if shown else "none"  # a frame when there is no thumbnail
    return f'<video class="inline" controls preload="{preload}" src="{e(src)}"{hidden}></video>'


def _reference(row: ReportRow, bases: tuple[Path, ...]) -> str:
    cell = row.get("image").strip()
    if not cell:
        return ""
    path = Path(cell)
    candidates = [path] if path.is_absolute() else [base / path for base in bases]
    found = next((p for p in candidates if p.is_file()), None)
    uri = thumbnail_uri(found, REFERENCE_SIDE)
    if uri is None:
        return ""
    return (
        f'<figure class="ref"><img src="{uri}" alt="{e(f"reference image {cell}")}">'
        f"<figcaption>reference</figcaption></figure>"
    )


def _placeholder_text(row: ReportRow) -> str:
    if row.thumbnail is not None:
        return "thumbnail unreadable" if row.thumbnail.exists() else "thumbnail missing"
    if row.status in BUSY:
        return "rendering…" if row.status == Status.IN_PROGRESS else "waiting…"
    return "no video" if row.needs_attention else "no preview"


def _reason(row: ReportRow) -> str:
    if not row.needs_attention and not row.reason:
        return ""
    return f'<p class="reason">{e(row.reason or "no reason recorded")}</p>'


def _next(row: ReportRow) -> str:
    step = next_step({**row.record, "status": row.status})
    return f'<p class="next"><strong>Next:</strong> {e(step)}</p>' if step else ""


def _progress(row: ReportRow) -> str:
    if row.status != Status.IN_PROGRESS:
        return ""
    try:
        percent = max(0, min(100, int(float(row.get("progress") or 0))))
    except ValueError:
        percent = 0
    return (
        f'<div class="progress"><progress max="100" value="{percent}">{percent}%</progress>'
        f"<span>{percent}%</span></div>"
    )


def _team(row: ReportRow, columns: tuple[str, ...]) -> str:
    """The team's own columns, each value tagged so the page can filter and group by it.

    A blank cell is tagged but not shown: a card lists what the row says.
    """
    items = "".join(
        f'<div class="fact"{"" if row.get(c).strip() else " hidden"}><dt>{e(c)}</dt>'
        f'<dd data-column="{e(c)}" data-value="{e(row.get(c).strip())}">{e(row.get(c))}</dd></div>'
        for c in columns
    )
    return f'<dl class="team">{items}</dl>' if items else ""


def _facts(row: ReportRow) -> str:
    facts = [
        ("duration", f"{row.seconds} s" if row.seconds else ""),
        ("size", row.get("size").replace("x", "×")),
        ("file", human_bytes(row.file_bytes)),
        ("model", row.get("model")),
    ]
    items = "".join(
        f'<div class="fact"><dt>{e(label)}</dt><dd>{e(value)}</dd></div>'
        for label, value in facts
        if value
    )
    return f'<dl class="facts">{items}</dl>' if items else ""


def _updated(row: ReportRow) -> str:
    stamp = row.get("timestamp")
    return f'<p class="updated">updated {time_element(stamp)}</p>' if stamp else ""


def _video_link(row: ReportRow, folder: Path) -> str:
    if row.file is None:
        return ""
    href = relative_link(row.file.resolve(), folder)
    missing = "" if row.file.exists() else ' <span class="missing">(file not found)</span>'
    return f'<a class="video" href="{e(href)}">▶ Open video</a>{missing}'
