"""Resume decisions: given the validated rows and the ledger, what this run does with each.

Pure functions over plain data, so that ``--dry-run`` shows exactly what a real run does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from batchgen.errors import RejectedError
from batchgen.jobs import Job
from batchgen.ledger import Record
from batchgen.remix_sources import source_failure
from batchgen.status import MAYBE_PAID, READY_FOR_REMIX, REFUSED, Status, was_paid

SEND = "send"
RECONCILE = "reconcile"  # a create may have been sent: look it up before sending again
SKIP = "skip"
OVER_LIMIT = "over --limit (next run)"
OVER_BUDGET = "over budget (--max-cost/--max-jobs)"


@dataclass(frozen=True)
class Step:
    """What happens to one row in this run, and why."""

    job: Job
    action: str
    reason: str
    record_as: str | None = None  # a status to write for a skipped row (skipped_budget)


@dataclass(frozen=True)
class Plan:
    """Every valid row's step, in manifest order."""

    steps: tuple[Step, ...]

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


def no_price(fields: Mapping[str, str]) -> float | None:
    """The price function of a provider without prices."""
    return None


@dataclass(frozen=True)
class PlanOptions:
    """Flags that change what a run sends."""

    retry_rejected: bool = False
    limit: int | None = None  # creates in this run
    max_jobs: int | None = None  # creates over every run of this results file
    max_cost: float | None = None  # estimated USD over every run of this results file
    price: Callable[[Mapping[str, str]], float | None] = no_price  # USD for a row's fields
    following: bool = False  # jobs are polled in this run, so remixes can wait for sources


def plan_run(jobs: Sequence[Job], states: Mapping[str, Record], options: PlanOptions) -> Plan:
    """Decide each row's step from its latest ledger state (see README, "Resume")."""
    caps = _Caps(options, states)
    steps: dict[str, Step] = {}
    # remixes last: whether one can go depends on its source row's step
    for job in sorted(jobs, key=lambda job: bool(job.remix_source)):
        step = _step_for(job, states, options, steps.get(job.remix_source))
        if step.action == SEND and job.remix_source:
            step = _source_in_this_run(step, steps.get(job.remix_source), states)
        steps[job.key] = caps.admit(step)
    return Plan(tuple(steps[job.key] for job in jobs))


def _source_in_this_run(step: Step, source: Step | None, states: Mapping[str, Record]) -> Step:
    """A remix whose source row is neither done nor sent in this run would wait for nothing."""
    done = states.get(step.job.remix_source, {}).get("job_id")
    if done or (source is not None and source.action != SKIP):
        return step
    return Step(step.job, SKIP, "waiting for its source row, which is not sent in this run")


class _Caps:
    """``--limit`` for this run; ``--max-jobs`` and ``--max-cost`` across resumed runs.

    Earlier runs' creates count against the caps. Once a new row does not fit, neither
    does any later one: the budget covers the first rows of the manifest, predictably.
    """

    def __init__(self, options: PlanOptions, states: Mapping[str, Record]) -> None:
        self._options = options
        self._jobs, self._spent = 0, 0.0  # earlier runs' creates and their estimated USD
        if options.max_jobs is not None or options.max_cost is not None:
            paid = [s for s in states.values() if was_paid(s)]
            self._jobs = len(paid)
            if options.max_cost is not None:  # pricing 100,000 done rows is not free
                self._spent = sum(options.price(s) or 0.0 for s in paid)
        self._sent = 0
        self._over_budget = False

    def admit(self, step: Step) -> Step:
        """``step`` itself, or a skip when a cap leaves no room for it."""
        if step.action == SKIP:
            return step
        limit = self._options.limit
        if limit is not None and self._sent >= limit:
            return Step(step.job, SKIP, OVER_LIMIT)
        # a reconciliation is already counted as paid: it is looked up, not bought again
        if step.action == SEND and not self._take_budget(step.job):
            return Step(step.job, SKIP, OVER_BUDGET, Status.SKIPPED_BUDGET)
        self._sent += 1
        return step

    def _take_budget(self, job: Job) -> bool:
        options, cost = self._options, self._options.price(job.fields) or 0.0
        too_many = options.max_jobs is not None and self._jobs + 1 > options.max_jobs
        too_dear = options.max_cost is not None and self._spent + cost > options.max_cost + 1e-9
        self._over_budget = self._over_budget or too_many or too_dear
        if not self._over_budget:
            self._jobs, self._spent = self._jobs + 1, self._spent + cost
        return not self._over_budget


def _step_for(
    job: Job, states: Mapping[str, Record], options: PlanOptions, source_step: Step | None
) -> Step:
    state = states.get(job.key)
    step = _resume_step(job, state, options)
    if step.action == SEND and job.remix_source:
        # a source sent again in this run (fixed, --retry-rejected) is judged by its new try
        resent = source_step is not None and source_step.action != SKIP
        return _remix_step(step, {} if resent else states.get(job.remix_source, {}), options)
    return step


def _remix_step(step: Step, source: Record, options: PlanOptions) -> Step:
    """A remix of another row waits for that row's video; it cannot outlive its failure."""
    if source.get("status", "") in READY_FOR_REMIX:
        return step
    failure = source_failure(step.job.remix_source, source)
    if isinstance(failure, RejectedError):  # recorded, so that the results say why
        return Step(step.job, SKIP, failure.message, record_as=Status.REJECTED)
    if options.following:
        return step  # the submitter holds it until the source completes
    return Step(step.job, SKIP, "waiting for its source row to complete (rerun, or --wait)")


def _resume_step(job: Job, state: Record | None, options: PlanOptions) -> Step:
    if state is None:
        return Step(job, SEND, "new row")
    status, job_id = state.get("status", ""), state.get("job_id", "")
    if job_id:
        return Step(job, SKIP, "already submitted" + _changed_note(job, state))
    if status in MAYBE_PAID:
        return Step(job, RECONCILE, "a create may have been sent: look it up first")
    if status in REFUSED:
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
