"""Settling an unresolved row by hand: ``batchgen resolve RESULTS KEY``.

Where the provider can neither list its jobs nor honour idempotency keys, a create whose
answer was lost (a timeout, a reset, a Cloudflare 524) leaves its row ``unresolved``:
batchgen cannot tell whether it was paid for, so it never sends it again by itself. The
user can tell, from the relay's dashboard. ``--job-id ID`` adopts the job found there (the
row is then followed and downloaded like any other); ``--not-made`` records that nothing
was made, so the next run sends the row again. Settling sends nothing to the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchgen.errors import UsageError
from batchgen.ledger import Ledger
from batchgen.status import MAYBE_PAID, Status

#: Longer than any provider's id (LiteLLM's re-encoded ones are ~270 characters).
MAX_JOB_ID_CHARS = 1000
NOT_MADE_CODE = "resolved_not_made"
NOT_MADE_MESSAGE = (
    "marked not made by hand (batchgen resolve --not-made): the next run sends it again"
)


@dataclass(frozen=True)
class Settled:
    """How one row was settled."""

    key: str
    status: str
    job_id: str = ""

    def summary(self, results: Path) -> str:
        """What was recorded, and what happens next."""
        if self.job_id:
            return (
                f"{results}: row {self.key} adopted job {self.job_id}; "
                f"`batchgen poll {results}` (or the next run with --wait) follows it"
            )
        return f"{results}: row {self.key} marked not made; the next `batchgen run` sends it"


def settle(results: Path, key: str, *, job_id: str | None, not_made: bool) -> Settled:
    """Record, for the ``unresolved`` (or ``submitting``) row ``key`` of ``results``, the job
    the provider shows for it (``job_id``), or that it made none (``not_made``).

    Raises :class:`UsageError` (exit 2, nothing recorded) for anything else: both or neither
    given, an unknown key, a row that is not waiting to be resolved, a job id that is
    malformed or already another row's.
    """
    if (job_id is not None) == not_made:
        raise UsageError("resolve: give exactly one of --job-id ID or --not-made")
    with Ledger.open(results) as ledger:
        _check_row(results, key, ledger.states)
        # only the bookkeeping changes: what was sent for the row stays as recorded
        if job_id is None:
            changes = {"status": Status.ERROR, "error_code": NOT_MADE_CODE}
            ledger.record(key, {**changes, "error_message": NOT_MADE_MESSAGE}, durable=True)
            return Settled(key, Status.ERROR)
        job_id = job_id.strip()
        _check_job_id(results, key, job_id, ledger.states)
        adopted = {"job_id": job_id, "status": Status.QUEUED, "progress": 0}
        ledger.record(key, {**adopted, "error_code": "", "error_message": ""}, durable=True)
        return Settled(key, Status.QUEUED, job_id)


def _check_row(results: Path, key: str, states: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse unless ``key`` is a row whose create may have been paid for, job unknown."""
    state = states.get(key)
    waiting = sorted(k for k, s in states.items() if _settleable(s))
    if state is None:
        hint = f"rows to resolve: {', '.join(waiting[:5])}" if waiting else "no row needs it"
        raise UsageError(f"{results}: no row with key {key!r} ({hint})")
    if state.get("job_id"):
        raise UsageError(
            f"{results}: row {key} already has job {state['job_id']} "
            f"({state.get('status', '')}): nothing to resolve"
        )
    if not _settleable(state):
        raise UsageError(
            f"{results}: row {key} is {state.get('status') or 'without a status'}, not "
            "unresolved: nothing to resolve (only a create of unknown outcome is)"
        )


def _settleable(state: Mapping[str, str]) -> bool:
    return not state.get("job_id") and state.get("status") in MAYBE_PAID


def _check_job_id(
    results: Path, key: str, job_id: str, states: Mapping[str, Mapping[str, str]]
) -> None:
    """Refuse an id that cannot be one (empty, spaces, control characters, too long), and
    one another row owns: two rows claiming one job would hide a video never made."""
    if (
        not job_id
        or len(job_id) > MAX_JOB_ID_CHARS
        or any(c.isspace() or not c.isprintable() for c in job_id)
    ):
        raise UsageError(f"--job-id {job_id!r}: not a job id (copy it from the dashboard)")
    owner = next((k for k, s in states.items() if s.get("job_id") == job_id), None)
    if owner is not None:
        raise UsageError(
            f"{results}: job {job_id} is already row {owner}'s: one job cannot be two rows' "
            f"videos (row {key} is still unresolved)"
        )
