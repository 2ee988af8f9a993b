"""Every status a row can have in the results file, and what each group of them means.

The row's state machine in one place: which states are final, which were (or may have
been) paid for, which need the user's attention, which a remix can start from. Every
other module asks here instead of listing statuses itself (see README, "Statuses").
"""

from __future__ import annotations

from collections.abc import Mapping


class Status:
    """Every status a row can have in the results file (see README, "Statuses")."""

    INVALID = "invalid"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    ERROR = "error"
    UNRESOLVED = "unresolved"
    DOWNLOADED = "downloaded"
    EXPIRED = "expired"
    LOST = "lost"
    SKIPPED_BUDGET = "skipped_budget"


#: Not a status of the results file: what a row of this run is counted as when it has no
#: line there, or when a stop came before its create was sent (the row stays as it was).
NOT_SENT = "not sent"

#: The job's video is there: ready to download, or downloaded (also: ready for a remix).
DONE = frozenset({Status.COMPLETED, Status.DOWNLOADED})
#: A remix can be sent once its source row is in one of these states.
READY_FOR_REMIX = DONE

#: Final states that want the user's attention: the job ended without a video for them.
TROUBLE = frozenset({Status.FAILED, Status.EXPIRED, Status.LOST})

#: States a job's poll ends at: nothing more will change at the provider.
FINAL = DONE | TROUBLE

#: A job exists (or existed) at the provider for a row in these states: it was paid for.
AT_PROVIDER = FINAL | {Status.QUEUED, Status.IN_PROGRESS}

#: A create was, or may have been, paid for, and its job id is not known: look it up
#: before sending again.
MAYBE_PAID = frozenset({Status.SUBMITTING, Status.UNRESOLVED})

#: Refused before anything was made; sent again only with ``--retry-rejected``.
REFUSED = frozenset({Status.REJECTED, Status.INVALID})

#: States of a submission that want the user's attention and make ``run`` exit 1.
SUBMIT_ATTENTION = REFUSED | {Status.ERROR, Status.UNRESOLVED}

#: States the report lists under "needs attention", with their reason.
ATTENTION = SUBMIT_ATTENTION | TROUBLE

#: States of rows that never became a job at the provider: nothing to poll.
NEVER_A_JOB = SUBMIT_ATTENTION | {Status.SUBMITTING, Status.SKIPPED_BUDGET}

#: Still on its way: being sent, or waiting or rendering at the provider.
BUSY = frozenset({Status.SUBMITTING, Status.QUEUED, Status.IN_PROGRESS})

#: A remix's source in these states will never give a video unless the user changes it.
DEAD_SOURCES = TROUBLE | REFUSED
#: A remix's source in these states may still give a video in a later run, unaided.
STALLED_SOURCES = frozenset({Status.ERROR, Status.UNRESOLVED, Status.SKIPPED_BUDGET})

#: The order statuses are listed in: a row's life from left to right, trouble last.
ORDER = (
    Status.INVALID,
    Status.SUBMITTING,
    Status.QUEUED,
    Status.IN_PROGRESS,
    Status.COMPLETED,
    Status.DOWNLOADED,
    Status.SKIPPED_BUDGET,
    Status.FAILED,
    Status.REJECTED,
    Status.ERROR,
    Status.UNRESOLVED,
    Status.EXPIRED,
    Status.LOST,
)


def is_pending(record: Mapping[str, str]) -> bool:
    """A job still at the provider's: it has a job id and no final status yet.

    An unknown status word (a relay's own) is not final, so it is pending.
    """
    status = record.get("status", "")
    return bool(record.get("job_id")) and status not in FINAL and status not in NEVER_A_JOB


def was_paid(record: Mapping[str, str]) -> bool:
    """Whether the row's create was, or may have been, paid for (it counts against caps)."""
    return bool(record.get("job_id")) or record.get("status") in MAYBE_PAID
