"""Resume decisions: given the validated rows and the ledger, what this run does with each.

Pure functions over plain data, so that ``--dry-run`` shows exactly what a real run does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from batchgen.jobs import Job
from batchgen.ledger import Record, Status

SEND = "send"
RECONCILE = "reconcile"  # a create may have been sent: look it up before sending again
SKIP = "skip"


@dataclass(frozen=True)
class Step:
    """What happens to one row in this run, and why."""

    job: Job
    action: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """Every valid row's step, in manifest order."""

    steps: tuple[Step, ...]
    deferred_by_limit: int = 0

    def with_action(self, action: str) -> list[Step]:
        return [s for s in self.steps if s.action == action]

    @property
    def to_submit(self) -> list[Step]:
        """Steps that may create a job: sends and reconciliations."""
        return [s for s in self.steps if s.action != SKIP]

    @property
    def seconds_of_video(self) -> int:
        return sum(s.job.seconds for s in self.to_submit)

    def reasons(self) -> dict[str, int]:
        """How many rows are skipped for each reason (for the dry-run and summary)."""
        counts: dict[str, int] = {}
        for step in self.with_action(SKIP):
            counts[step.reason] = counts.get(step.reason, 0) + 1
        return counts


@dataclass(frozen=True)
class PlanOptions:
    retry_rejected: bool = False
    limit: int | None = None
    extra_skips: Mapping[str, str] = field(default_factory=dict)  # key -> reason


def plan_run(jobs: Sequence[Job], states: Mapping[str, Record], options: PlanOptions) -> Plan:
    """Decide each row's step from its latest ledger state (see README, "Resume")."""
    steps, deferred, budget = [], 0, options.limit
    for job in jobs:
        step = _step_for(job, states.get(job.key), options)
        if step.action != SKIP and budget is not None:
            if budget <= 0:
                step = Step(job, SKIP, "over --limit (next run)")
                deferred += 1
            budget -= 1
        steps.append(step)
    return Plan(tuple(steps), deferred)


def _step_for(job: Job, state: Record | None, options: PlanOptions) -> Step:
    if job.key in options.extra_skips:
        return Step(job, SKIP, options.extra_skips[job.key])
    if state is None:
        return Step(job, SEND, "new row")
    status, job_id = state.get("status", ""), state.get("job_id", "")
    if job_id:
        return Step(job, SKIP, "already submitted" + _changed_note(job, state))
    if status in (Status.SUBMITTING, Status.UNRESOLVED):
        return Step(job, RECONCILE, "a create may have been sent: look it up first")
    if status in (Status.REJECTED, Status.INVALID):
        if options.retry_rejected:
            return Step(job, SEND, f"retrying {status} row (--retry-rejected)")
        return Step(job, SKIP, f"{status} earlier (fix it, then --retry-rejected)")
    return Step(job, SEND, f"retrying after {status or 'no status'}")


def _changed_note(job: Job, state: Record) -> str:
    """Rows keyed by a user ``id`` keep their key when edited; say so rather than resend."""
    changed = [name for name, value in job.fields.items() if state.get(name, value) != value]
    return (
        f" (its {', '.join(changed)} changed since: give it a new id to send it again)"
        if changed
        else ""
    )
