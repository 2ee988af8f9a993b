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
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

from batchgen.errors import LedgerError
from batchgen.report.cards import (
    MAX_THUMBNAIL_BYTES,
    THUMBNAIL_SIDE,
    CardContext,
    card,
    thumbnail_uri,
    time_element,
    tone,
)
from batchgen.report.cards import e as _e
from batchgen.report.groups import GroupRow, GroupSummary, default_group_columns, summarise_by
from batchgen.report.summary import Report, ordered_statuses

__all__ = ["MAX_THUMBNAIL_BYTES", "THUMBNAIL_SIDE", "render_html", "thumbnail_uri", "tone"]
__all__ += ["team_columns", "write_html"]


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
    context = CardContext(folder, _image_bases(report), team_columns(report))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Template(_asset("report.html")).substitute(
        csp=_csp(style, script),
        title=_e(f"Report: {report.results.name}"),
        results=_e(str(report.results)),
        generated=time_element(generated),
        stats=_stats(report),
        summaries=_summaries(report),
        filters=_filters(report),
        total=str(len(report.rows)),
        cards="\n".join(card(row, context) for row in report.rows) or _EMPTY,
        style=style,
        script=script,
    )


def team_columns(report: Report) -> tuple[str, ...]:
    """The passthrough columns with a value in some row: on cards, filters and grouping.

    A column blank everywhere would only add noise, and ``id`` is each card's key already
    (an invalid row records it as a column of its own).
    """
    return tuple(
        c
        for c in report.passthrough
        if c.casefold() != "id" and any(r.get(c).strip() for r in report.rows)
    )


def _image_bases(report: Report) -> tuple[Path, ...]:
    # an image cell is relative to the manifest's folder, which is where the results file
    # is by default; else to where batchgen ran
    return (report.results.parent.resolve(), Path.cwd())


_EMPTY = '<p class="empty">The results file has no rows yet.</p>'


def _asset(name: str) -> str:
    return (
        resources.files("batchgen.report").joinpath("templates", name).read_text(encoding="utf-8")
    )


def _csp(style: str, script: str) -> str:
    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    return (
        # media: the row's own video file beside the page (file: from disk, 'self' if served)
        "default-src 'none'; img-src data:; media-src 'self' file:; "
        f"style-src 'sha256-{digest(style)}'; "
        f"script-src 'sha256-{digest(script)}'; base-uri 'none'; form-action 'none'"
    )


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
    selects = [_column_filter(report, c) for c in team_columns(report)]
    return "\n".join([*buttons, *selects, _group_select(report)])


def _column_filter(report: Report, column: str) -> str:
    """A select of the column's values (with counts) that narrows the cards to one."""
    counts: dict[str, int] = {}
    for row in report.rows:
        value = row.get(column).strip()
        counts[value] = counts.get(value, 0) + 1
    options = "".join(
        f'<option value="{_e(v)}">{_e(v or "(blank)")} ({n})</option>'
        for v, n in sorted(counts.items(), key=lambda item: (item[0] == "", item[0]))
    )
    return (
        f'<label class="pick">{_e(column)} <select data-column-filter="{_e(column)}">'
        f'<option value="" data-any="true">any</option>{options}</select></label>'
    )


def _group_select(report: Report) -> str:
    columns = "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in team_columns(report))
    return (
        '<label class="pick">group by <select id="group-by"><option value="">nothing</option>'
        f'<option value="status">status</option>{columns}</select></label>'
    )


def _summaries(report: Report) -> str:
    """A small table per team column (campaign, owner): rows by status, video, cost."""
    tables = [_summary_table(summarise_by(report, c)) for c in default_group_columns(report)]
    return f'<section class="summaries">{"".join(tables)}</section>' if tables else ""


def _summary_table(summary: GroupSummary) -> str:
    has_cost = any(g.cost is not None for g in summary.groups)
    titles = (summary.column, "rows", "by status", "seconds", *(("est. cost",) if has_cost else ()))
    head = "".join(f"<th>{_e(t)}</th>" for t in titles)
    body = "".join(_summary_row(g, has_cost) for g in summary.groups)
    return (
        f'<table class="summary"><caption>by {_e(summary.column)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _summary_row(group: GroupRow, has_cost: bool) -> str:
    statuses = ", ".join(f"{s} {n}" for s, n in group.counts.items())
    cells = [str(group.rows), statuses, f"{group.seconds:,}"]
    if has_cost:
        cells.append(f"${group.cost:,.2f}" if group.cost is not None else "")
    tds = "".join(f"<td>{_e(c)}</td>" for c in cells)
    return f'<tr><th scope="row">{_e(group.label)}</th>{tds}</tr>'


def _button(value: str, label: str, count: int, *, pressed: bool = False) -> str:
    return (
        f'<button type="button" data-filter="{_e(value)}" aria-pressed="{str(pressed).lower()}">'
        f'{_e(label)} <span class="count">{count}</span></button>'
    )
