"""What to do about a row that needs attention: one sentence, from its status and error.

The report says *why* a row stands where it does (the provider's code and message); a lead
reading it the morning after wants *what to do*. :func:`next_step` turns a row's latest
ledger state into that sentence, naming the option or command that moves the row on. It is
pure (no files, no profile), so the HTML contact sheet, the run's closing summary and a
notification can all say the same thing.

The advice follows what a resumed run does with each status (see ``plan.py``): refused rows
are sent again only with ``--retry-rejected``; ``error`` rows are sent again by any rerun;
``unresolved`` rows are looked up first; rows with a job id are never sent again, so their
remedy is a new row (a new ``id``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from batchgen.status import Status

State = Mapping[str, str]

_MODERATION = re.compile(r"moderat|content[ _-]?policy|safety|blocked|sensitive", re.I)
_IMAGE_SIZE = re.compile(r"\b\d+\s*[x×]\s*\d+\b|dimension|resolution|image size", re.I)
_IMAGE = re.compile(r"image|input_reference", re.I)
_RATE = re.compile(r"\b429\b|rate.?limit|quota|insufficient|balance|credit", re.I)


def next_step(state: Mapping[str, str]) -> str:
    """The next step for a row in ``state`` (its ledger columns), in words; '' when none.

    Rows that are done, still on their way or merely not sent yet have no next step.
    """
    advice = _ADVICE.get(state.get("status", ""))
    return advice(state) if advice is not None else ""


def _text(state: State) -> str:
    return f"{state.get('error_code', '')} {state.get('error_message', '')}"


def _key(state: State) -> str:
    return state.get("key", "") or "KEY"


def _invalid(state: State) -> str:
    text = _text(state)
    if _IMAGE.search(text) and _IMAGE_SIZE.search(text):
        return (
            "Fix the reference image's size to match the video size (or set a fit mode) "
            "and rerun with --retry-rejected."
        )
    column = state.get("error_code", "")
    where = f"the {column} column of this row" if column else "this row"
    return f"Fix {where} in the manifest and rerun with --retry-rejected."


def _rejected(state: State) -> str:
    text = _text(state)
    if state.get("error_code", "").startswith("source_"):
        return "Its remix source row has no video: fix that row first, then rerun."
    if _MODERATION.search(text):
        return (
            "The provider's moderation refused the prompt: rewrite it, "
            "then rerun with --retry-rejected."
        )
    if _RATE.search(text):
        return "Refused for quota or balance: top up, then rerun with --retry-rejected."
    if re.search(r"\bsize\b", text, re.I):
        return (
            "The provider does not take this size: pick one `batchgen profiles NAME` lists, "
            "then rerun with --retry-rejected."
        )
    if _IMAGE.search(text):
        return "The provider refused the reference image: fix it and rerun with --retry-rejected."
    return "The provider refused the request: fix the row and rerun with --retry-rejected."


def _error(state: State) -> str:
    if state.get("error_code") == "resolved_not_made":
        return "Marked not made: the next run sends it again."
    return "The provider kept failing: run the same command again later to send it again."


def _unresolved(state: State) -> str:
    return (
        "The create may have made a (paid) job: look it up with "
        f"`batchgen resolve RESULTS {_key(state)} --job-id ID` (or --not-made), "
        "or rerun with --resend-unresolved."
    )


def _failed(state: State) -> str:
    if _MODERATION.search(_text(state)):
        return (
            "The provider's moderation refused the prompt: rewrite it and rerun "
            "(a row with its own id needs a new id)."
        )
    return "The provider's job failed: change the row (or give it a new id) to send it again."


def _expired(state: State) -> str:
    return (
        "The download link expired before the video was fetched: the video is gone; "
        "give the row a new id to make it again, and download sooner (--download)."
    )


def _lost(state: State) -> str:
    return (
        "The provider no longer knows this job: check its dashboard for the id, "
        "or give the row a new id to make it again."
    )


def _skipped_budget(state: State) -> str:
    return "Over the budget: raise --max-cost or --max-jobs and rerun to send it."


_ADVICE: dict[str, Callable[[State], str]] = {
    Status.INVALID: _invalid,
    Status.REJECTED: _rejected,
    Status.ERROR: _error,
    Status.UNRESOLVED: _unresolved,
    Status.FAILED: _failed,
    Status.EXPIRED: _expired,
    Status.LOST: _lost,
    Status.SKIPPED_BUDGET: _skipped_budget,
}
