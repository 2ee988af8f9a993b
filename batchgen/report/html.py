"""The HTML contact sheet: one self-contained page, a card per row of the results file.

The page must open offline from anywhere (a laptop, a phone, an e-mail attachment): the
thumbnails are embedded as ``data:`` URIs, the CSS and JS are inline, and nothing is
fetched by URL. A Content-Security-Policy allows only that inline CSS and JS (by hash)
and ``data:`` images, so even a missed escape could not run a script or load anything.
Everything from the ledger is escaped: prompts are user text.
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import datetime, timezone
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

from PIL import Image

from batchgen.errors import LedgerError
from batchgen.report.summary import (
    Report,
    ReportRow,
    human_bytes,
    ordered_statuses,
    relative_link,
)
from batchgen.status import ATTENTION, BUSY, DONE, Status

#: Thumbnail files larger than this are not read at all (a placeholder says so).
MAX_THUMBNAIL_BYTES = 20_000_000
#: Longest side, in pixels, of an embedded thumbnail: sharp on a 2x screen at card width.
THUMBNAIL_SIDE = 640

# formats every browser shows, by Pillow's name
_EMBEDDABLE = {"WEBP": "image/webp", "PNG": "image/png", "JPEG": "image/jpeg"}


def write_html(report: Report, path: Path) -> Path:
    """Write the contact sheet to ``path``; video links are relative to its folder."""
    page = render_html(report, path.parent.resolve())
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"{path}: cannot write the report: {exc.strerror}") from None
    return path


def render_html(report: Report, folder: Path) -> str:
    """The page as text, with links relative to ``folder`` (where the page will be)."""
    style, script = _asset("report.css"), _asset("report.js")
    return Template(_asset("report.html")).substitute(
        csp=_csp(style, script),
        title=_e(f"Report: {report.results.name}"),
        results=_e(str(report.results)),
        generated=_e(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        stats=_stats(report),
        filters=_filters(report),
        total=str(len(report.rows)),
        cards="\n".join(_card(row, folder) for row in report.rows) or _EMPTY,
        style=style,
        script=script,
    )


_EMPTY = '<p class="empty">The results file has no rows yet.</p>'


def tone(status: str) -> str:
    """The colour family of a status badge: ``ok``, ``busy``, ``bad`` or ``muted``."""
    if status in DONE:
        return "ok"
    if status in BUSY:
        return "busy"
    return "bad" if status in ATTENTION else "muted"


def thumbnail_uri(path: Path | None) -> str | None:
    """``path`` as a ``data:`` URI, or None when missing, too large or not an image.

    Images larger than :data:`THUMBNAIL_SIDE` are scaled down first: a page of hundreds of
    cards must stay light enough to open on a phone.
    """
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_THUMBNAIL_BYTES:
            return None
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if image.format in _EMBEDDABLE and max(image.size) <= THUMBNAIL_SIDE:
                return _data_uri(_EMBEDDABLE[image.format], data)
            return _data_uri("image/webp", _shrink(image))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # unreadable or not an image: the card shows a placeholder


def _shrink(image: Image.Image) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80)
    return out.getvalue()


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _asset(name: str) -> str:
    return (
        resources.files("batchgen.report").joinpath("templates", name).read_text(encoding="utf-8")
    )


def _csp(style: str, script: str) -> str:
    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    return (
        f"default-src 'none'; img-src data:; style-src 'sha256-{digest(style)}'; "
        f"script-src 'sha256-{digest(script)}'; base-uri 'none'; form-action 'none'"
    )


def _e(text: str) -> str:
    return escape(text, quote=True)


def _stats(report: Report) -> str:
    tiles = [
        ("rows", str(len(report.rows))),
        ("seconds of video", f"{report.seconds:,}"),
        ("need attention", str(len(report.attention))),
    ]
    if report.cost is not None:
        tiles.insert(2, ("estimated cost", f"${report.cost:,.2f}"))
    return "\n".join(
        f'<div class="stat"><span class="value">{_e(value)}</span>'
        f'<span class="label">{_e(label)}</span></div>'
        for label, value in tiles
    )


def _filters(report: Report) -> str:
    counts = report.counts
    buttons = [_button("all", "All", len(report.rows), pressed=True)]
    if report.attention:
        buttons.append(_button("attention", "Needs attention", len(report.attention)))
    buttons += [_button(f"status:{s}", s, counts[s]) for s in ordered_statuses(counts)]
    return "\n".join(buttons)


def _button(value: str, label: str, count: int, *, pressed: bool = False) -> str:
    return (
        f'<button type="button" data-filter="{_e(value)}" aria-pressed="{str(pressed).lower()}">'
        f'{_e(label)} <span class="count">{count}</span></button>'
    )


def _card(row: ReportRow, folder: Path) -> str:
    attention = "true" if row.needs_attention else "false"
    return (
        f'<article class="card" data-status="{_e(row.status)}" data-attention="{attention}">'
        f"{_thumb(row)}"
        f'<div class="body">'
        f'<div class="meta"><span class="badge tone-{tone(row.status)}">{_e(row.status)}</span>'
        f'<span class="where" title="{_e(row.get("job_id"))}">{_e(_where(row))}</span></div>'
        f'<p class="prompt" title="{_e(row.get("prompt"))}">{_e(row.get("prompt"))}</p>'
        f"{_reason(row)}{_progress(row)}{_facts(row)}{_video_link(row, folder)}"
        f"</div></article>"
    )


def _where(row: ReportRow) -> str:
    return f"row {row.row} · {row.key}" if row.row is not None else row.key


def _thumb(row: ReportRow) -> str:
    uri = thumbnail_uri(row.thumbnail)
    if uri is not None:
        alt = f"thumbnail of {row.label}"
        return f'<div class="thumb"><img src="{uri}" alt="{_e(alt)}"></div>'
    return f'<div class="thumb placeholder"><span>{_e(_placeholder_text(row))}</span></div>'


def _placeholder_text(row: ReportRow) -> str:
    if row.thumbnail is not None:
        return "thumbnail unreadable" if row.thumbnail.exists() else "thumbnail missing"
    if row.status in BUSY:
        return "rendering…" if row.status == Status.IN_PROGRESS else "waiting…"
    return "no video" if row.needs_attention else "no preview"


def _reason(row: ReportRow) -> str:
    if not row.needs_attention and not row.reason:
        return ""
    return f'<p class="reason">{_e(row.reason or "no reason recorded")}</p>'


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


def _facts(row: ReportRow) -> str:
    facts = [
        ("duration", f"{row.seconds} s" if row.seconds else ""),
        ("size", row.get("size").replace("x", "×")),
        ("file", human_bytes(row.file_bytes)),
        ("model", row.get("model")),
    ]
    items = "".join(
        f'<div class="fact"><dt>{_e(label)}</dt><dd>{_e(value)}</dd></div>'
        for label, value in facts
        if value
    )
    return f'<dl class="facts">{items}</dl>' if items else ""


def _video_link(row: ReportRow, folder: Path) -> str:
    if row.file is None:
        return ""
    href = relative_link(row.file.resolve(), folder)
    missing = "" if row.file.exists() else ' <span class="missing">(file not found)</span>'
    return f'<a class="video" href="{_e(href)}">▶ Open video</a>{missing}'
