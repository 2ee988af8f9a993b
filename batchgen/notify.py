"""``--notify URL``: word when the night is over, POSTed to a chat's incoming webhook.

The payload's ``text`` reads well in Slack, Mattermost and Teams-style webhooks; the rest
are the run's figures as structured fields (the same as ``--summary-json``, plus the
report files written). A notification is a courtesy: one that fails is logged and retried
a few times, and never changes the command's outcome or exit code.

A webhook URL is a credential (whoever has it can post to the channel), so logs and
``batchgen config`` show it only as ``scheme://host/…``. The API key is never part of a
payload: nothing here reads it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from batchgen.attention import AttentionRow, attention_json, attention_rows
from batchgen.errors import BatchgenError, RejectedError, RetryableError
from batchgen.render import duration, run_attention, summary_json
from batchgen.report.summary import Report, ordered_statuses
from batchgen.runner import RunResult

log = logging.getLogger("batchgen.notify")

#: Rows the message's text lists; the structured ``attention`` field has :data:`SHOWN`.
TEXT_ROWS = 5
#: Characters of a failed run's error the message's text carries.
FAILURE_TEXT = 1500


@dataclass(frozen=True)
class Delivery:
    """How hard to try: attempts in all, seconds per attempt, the first retry's wait."""

    attempts: int = 3
    timeout: float = 5.0  # a webhook answers in well under a second; cron should not wait
    backoff: float = 1.0


def shown_url(url: str) -> str:
    """The URL as logs may show it: ``scheme://host/…``, the path and query (the token) cut."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if _valid_port(url) and parts.port else ""
    return f"{parts.scheme or '?'}://{host}{port}/…"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook address (naming it only by its host), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _valid_port(url):
        return f"{shown_url(url)} is not an http(s):// webhook address"
    return None


def _valid_port(url: str) -> bool:
    try:
        port = urlsplit(url).port  # raises ValueError for a port that is not one
    except ValueError:
        return False
    return port != 0


def run_payload(result: RunResult) -> dict[str, object]:
    """The notification for a finished ``run``: its summary JSON plus a chat ``text``."""
    spent = result.cost_of(result.sent_keys)
    finished = result.finished or result.started
    headline = f"batchgen run {result.prepared.manifest.path.name}: {_outcome(result.exit_code)}"
    text = _text(
        headline,
        counts=result.statuses,
        cost=f"${spent:,.2f} this run" if result.prepared.profile.prices else None,
        took=duration(finished - result.started),
        results=result.results_path,
        rows=run_attention(result),
    )
    return {"text": text, "command": "run", **summary_json(result), "reports": []}


def report_payload(
    report: Report, written: Sequence[Path], exit_code: int = 0
) -> dict[str, object]:
    """The notification for ``batchgen report``: where every row stands, the files written."""
    rows = attention_rows((r.record for r in report.rows), report.results, None)
    cost = report.cost
    text = _text(
        f"batchgen report {report.results.name}: {len(report.rows)} rows",
        counts=report.counts,
        cost=None if cost is None else f"${cost:,.2f} for all rows",
        took=None,
        results=report.results,
        rows=rows,
    )
    return {
        "text": text,
        "command": "report",
        "exit_code": exit_code,
        "results": str(report.results),
        "reports": [str(p) for p in written],
        "rows": dict(report.counts),
        "seconds_of_video": report.seconds,
        "jobs": report.jobs,
        "estimated_cost_usd": {"all_rows": None if cost is None else round(cost, 4)},
        **attention_json(rows),
    }


def failure_payload(command: str, error: BatchgenError) -> dict[str, object]:
    """The notification for a run that stopped before submitting (bad manifest, lock held)."""
    text = f"batchgen {command} failed (exit {error.exit_code}): {error}"
    if len(text) > FAILURE_TEXT:  # a manifest's every problem belongs in the log, not a chat
        text = text[: FAILURE_TEXT - 1] + "…"
    return {"text": text, "command": command, "exit_code": error.exit_code, "error": str(error)}


def _outcome(exit_code: int) -> str:
    words = {0: "done", 1: "done, some rows need attention", 4: "gave up waiting (timeout)"}
    return f"{words.get(exit_code, 'stopped')} (exit {exit_code})"


def _text(
    headline: str,
    *,
    counts: Mapping[str, int],
    cost: str | None,
    took: str | None,
    results: Path,
    rows: list[AttentionRow],
) -> str:
    """The message people read: headline, counts, cost and time, results, the first rows."""
    tally = ", ".join(f"{s} {counts[s]}" for s in ordered_statuses(counts) if counts[s])
    figures = " · ".join(part for part in (tally or "no rows", cost, took) if part)
    lines = [headline, figures, f"results: {results}"]
    if rows:
        lines.append(f"needs attention: {len(rows)} rows")
        lines += [_text_row(r) for r in rows[:TEXT_ROWS]]
        if len(rows) > TEXT_ROWS:
            lines.append(f"… and {len(rows) - TEXT_ROWS} more (batchgen report {results})")
    return "\n".join(lines)


def _text_row(row: AttentionRow) -> str:
    where = f"row {row.row}" if row.row is not None else "row ?"
    reason = f": {row.reason}" if row.reason else ""
    return f"• {where} ({row.key}) {row.status}{reason} → {row.next_step or row.command}"


def notify(url: str, payload: Mapping[str, object], delivery: Delivery = Delivery()) -> bool:
    """POST ``payload`` as JSON to ``url``, retrying a few times; True when delivered.

    Never raises: a failure is a warning in the log, naming the URL only by its host.
    """
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    shown = shown_url(url)
    retrying = Retrying(
        stop=stop_after_attempt(delivery.attempts),
        wait=wait_exponential(multiplier=delivery.backoff, max=30),
        retry=retry_if_exception_type(RetryableError),
        before_sleep=lambda state: log.warning(
            "notification to %s failed (%s); retrying", shown, _why(state.outcome, url)
        ),
        reraise=True,
    )
    try:
        status = retrying(_post, url, body, delivery.timeout)
    except (RetryableError, RejectedError) as exc:
        log.warning("notification to %s not delivered: %s", shown, _redact(str(exc), url))
        return False
    log.info("notified %s (HTTP %s)", shown, status)
    return True


def _post(url: str, body: bytes, timeout: float) -> int:
    """One POST; a 5xx, 408, 429 or a failed connection is worth another try."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code in (408, 429):
            raise RetryableError(f"HTTP {exc.code}", status=exc.code) from None
        raise RejectedError(f"HTTP {exc.code}", status=exc.code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise RetryableError(f"{type(reason).__name__}: {reason}") from None


def _why(outcome: object, url: str) -> str:
    exception = getattr(outcome, "exception", lambda: None)()
    return _redact(str(exception), url)


def _redact(text: str, url: str) -> str:
    """``text`` with the URL, and its path, replaced by :func:`shown_url`."""
    path = urlsplit(url).path
    text = text.replace(url, shown_url(url))
    return text.replace(path, "/…") if len(path) > 1 else text
