"""Submission: a pool of asyncio workers that turns planned rows into provider jobs.

Every create follows the same protocol, which is what "never pay twice" rests on:

1. take a running slot (the provider's cap on jobs running, :mod:`batchgen.running_slots`),
   then a request slot (concurrency cap and pacing), giving up if a stop signal came;
2. append a ``submitting`` intent to the ledger and fsync it;
3. send the create with the row's key as ``Idempotency-Key``;
4. append the answer (a job id, or why not).

A crash between 2 and 4 leaves ``submitting`` as the row's last state; the next run
looks the job up (:mod:`batchgen.reconcile`) instead of sending blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from batchgen.columns import created_columns, failure_columns, intent_columns, request_columns
from batchgen.errors import (
    ApiError,
    OutcomeUnknownError,
    RejectedError,
    RetryableError,
    StopRequested,
    UnresolvedError,
)
from batchgen.jobs import Job
from batchgen.ledger import Ledger, utc_now
from batchgen.plan import RECONCILE, Step
from batchgen.progress import Progress
from batchgen.provider.client import Video, VideoClient
from batchgen.provider.pacing import Throttle
from batchgen.provider.retry import RetrySettings, retrying
from batchgen.reconcile import FOUND, UNKNOWN, Reconciler
from batchgen.remix_sources import source_failure
from batchgen.running_slots import RunningSlots
from batchgen.signals import DEFAULT_GRACE_SECONDS, sleep_unless_stopped
from batchgen.status import MAYBE_PAID, NOT_SENT, READY_FOR_REMIX, Status

#: How often a remix checks whether its source row has completed (an in-memory look).
SOURCE_CHECK_SECONDS = 0.2


@dataclass(frozen=True)
class SubmitSettings:
    """How hard to push the provider, and what to do with creates of unknown outcome."""

    concurrency: int = 4
    rpm: float | None = 60.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    resend_unresolved: bool = False
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # for requests in flight after a stop
    max_running: int | None = None  # jobs running at the provider at once (None: no cap)


@dataclass
class SubmitTally:
    """What this run's submissions came to."""

    possible_duplicates: int = 0
    interrupted: bool = False
    held_back_seconds: float = 0.0  # how long the provider's 429s held every worker back
    held_by_cap: int = 0  # rows not sent: the running cap was full and nothing followed jobs


class Submitter:
    """Submits steps through one client, recording every state change in the ledger."""

    def __init__(
        self,
        client: VideoClient,
        ledger: Ledger,
        throttle: Throttle,
        settings: SubmitSettings,
        progress: Progress,
        stop: asyncio.Event,
        on_submitted: Callable[[str], None] | None = None,
        following_ended: Callable[[], bool] = lambda: False,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._throttle = throttle
        self._settings = settings
        self._progress = progress
        self._stop = stop
        self._on_submitted = on_submitted  # e.g. hands new jobs to the poller at once
        self._following_ended = following_ended  # then no source row will complete any more
        self._reconciler = Reconciler(client, ledger.job_ids, throttle)
        self._gates: dict[tuple[str, ...], _Gate] = {}
        self._unfinished: set[str] = set()  # rows of this run whose submit has not ended
        # a follower (fed by on_submitted) records jobs as they end, freeing running slots
        self._running = RunningSlots(
            settings.max_running, ledger, stop, followed=on_submitted is not None
        )
        self.tally = SubmitTally()

    async def run(self, steps: Sequence[Step]) -> SubmitTally:
        """Submit every step, or as many as a stop signal allows.

        Remixes of other rows go last, so that waiting for their sources holds no one up.
        """
        queue = deque(sorted(steps, key=lambda step: bool(step.job.remix_source)))
        self._unfinished = {step.job.key for step in steps}
        workers = [
            asyncio.create_task(self._work(queue))
            for _ in range(min(self._settings.concurrency, len(queue)))
        ]
        try:
            if workers:
                await self._until_done_or_stopped(workers)
        finally:
            self._running.close()
        self.tally.interrupted = self._stop.is_set()
        self.tally.held_by_cap = self._running.turned_away
        self.tally.held_back_seconds = self._throttle.pacer.held_back
        return self.tally

    async def _until_done_or_stopped(self, workers: list[asyncio.Task[None]]) -> None:
        all_done = asyncio.gather(*workers)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            waiters: list[asyncio.Future[Any]] = [all_done, stopped]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not all_done.done():
                # stop taking rows; let the requests in flight finish, within bounds
                await asyncio.wait(workers, timeout=self._settings.grace_seconds)
        finally:
            stopped.cancel()
            for task in workers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await all_done  # re-raises a worker's unexpected error (a bug, a full disk)

    async def _work(self, queue: deque[Step]) -> None:
        while queue and not self._stop.is_set():
            step = queue.popleft()
            outcome = await self.submit(step)
            self._unfinished.discard(step.job.key)
            self._progress.advance(outcome)

    def given_up(self, key: str) -> None:
        """The follower gave up on row ``key``'s job: its running slot is free."""
        self._running.given_up(key)

    def end_following(self) -> None:
        """Following has ended: no job will be seen to finish, so rows waiting for a
        running slot give up (not sent; the next run sends them)."""
        self._running.end_following()

    async def submit(self, step: Step) -> str:
        """Take one row to a job id or a final reason; returns the row's new status."""
        try:
            return await self._submit(step)
        finally:
            self._running.release(step.job.key)  # after its job, if any, is in the ledger

    async def _submit(self, step: Step) -> str:
        job, create = step.job, _Create(maybe_sent=step.action == RECONCILE)
        try:
            video = await self._create_once(job, create)
        except StopRequested:
            if create.last_answer is not None and not create.maybe_sent:
                # the provider said "not now" and nothing was made: the next run retries it
                return self._fail(job, Status.ERROR, create.last_answer)
            return NOT_SENT  # nothing new was sent; the row stays as it was
        except RejectedError as exc:
            return self._fail(job, Status.REJECTED, exc)
        except UnresolvedError as exc:
            return self._fail(job, Status.UNRESOLVED, exc)
        except ApiError as exc:
            return self._fail(job, Status.ERROR, exc)
        state = self._ledger.record(job.key, created_columns(video), durable=True)
        if self._on_submitted is not None:
            self._on_submitted(job.key)
        return state["status"]

    async def _create_once(self, job: Job, create: _Create) -> Video:
        """Create the job, retrying what can be retried, never resending a create blindly."""
        try:
            async for attempt in retrying(
                self._settings.retry, self._throttle.pacer, sleep=self._sleep_unless_stopped
            ):
                with attempt:
                    return await self._attempt(job, create)
        except RetryableError as exc:
            if not create.maybe_sent:
                raise
            blind = self._reconciler.cannot_tell()
            if blind is not None:  # no later run can look it up either: say the way out
                create.lost_answer = create.lost_answer or exc
                raise UnresolvedError(
                    _unresolved_message(job, create, blind), status=exc.status, code=exc.code
                ) from exc
            # Out of attempts with a create that may have made a job: recorded as 'error'
            # it would be sent again blindly by the next run; 'unresolved' is looked up first.
            raise UnresolvedError(
                f"gave up after retries, and a create may have reached the provider "
                f"({exc.message}): the next run looks it up before sending it again",
                status=exc.status,
                code=exc.code,
            ) from exc
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, job: Job, create: _Create) -> Video:
        """One try: look up a create that may have been made, else send one."""
        if create.maybe_sent:
            found = await self._look_up(job, create)
            if found is not None:
                return found
        try:
            return await self._send(job, create)
        except OutcomeUnknownError as exc:
            create.lost_answer = exc
            raise
        except ApiError as exc:
            create.maybe_sent, create.last_answer = False, exc  # answered: nothing was made
            raise

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        """Tenacity's wait between tries, cut short by a stop signal (StopRequested)."""
        await sleep_unless_stopped(self._stop, seconds)

    async def _look_up(self, job: Job, create: _Create) -> Video | None:
        state = self._ledger.states.get(job.key, {})
        # the first create that may have been paid for, not the last line's time: retries
        # (and a run that gave up) can come long after it
        intent = state.get("submitted_at") or state.get("timestamp", "")
        if job.remix_source:
            job = replace(job, remix_of=self._ledger.states[job.remix_source]["job_id"])
        # An identical row's create in flight may have made a job not yet in the ledger:
        # look up only when none is in flight, and start none while looking.
        try:
            async with self._gate(job).looking():
                lookup = await self._reconciler.look_up(job, intent)
        except RejectedError as exc:  # the list itself was refused: still unknown
            raise UnresolvedError(
                f"a create may have been sent and looking it up failed ({exc.message})",
                status=exc.status,
                code=exc.code,
            ) from exc
        if lookup.outcome == FOUND:
            return lookup.video
        if lookup.outcome == UNKNOWN:
            if not self._settings.resend_unresolved:
                raise UnresolvedError(_unresolved_message(job, create, lookup.detail))
            self.tally.possible_duplicates += 1
        return None

    async def _send(self, job: Job, create: _Create) -> Video:
        if job.remix_source:
            job = replace(job, remix_of=await self._source_job_id(job))
        # Waiting for a running slot holds nothing else. The gate before the throttle: a
        # lookup holding the gate needs throttle slots.
        await self._running.take(job.key)
        async with self._gate(job).creating(), self._throttle:
            if self._stop.is_set():  # the slot came after a stop: send nothing more
                raise StopRequested("stopped before sending")
            state = self._ledger.states.get(job.key, {})
            attempts = int(state.get("attempts") or 0) + 1
            first = not (state.get("status") in MAYBE_PAID and state.get("submitted_at"))
            changes = intent_columns(job, attempts, utc_now() if first else None)
            self._ledger.record(job.key, changes, durable=True)
            create.maybe_sent = True  # from here on, a job may exist whatever happens
            try:
                video = await self._client.create(job, idempotency_key=job.key)
            except OSError as exc:  # the image, opened before anything is sent
                raise ApiError(f"cannot read the image: {exc.strerror or exc}") from None
        self._throttle.pacer.succeeded()
        return video

    async def _source_job_id(self, job: Job) -> str:
        """Wait until the row ``job`` remixes has completed (the follower records it).

        Raises the reason to record when the source ended without a video
        (:func:`~batchgen.remix_sources.source_failure`); gives up, sending nothing
        (StopRequested), on a stop signal or when following has ended.
        """
        while not self._following_ended():
            source = self._ledger.states.get(job.remix_source, {})
            if source.get("status") in READY_FOR_REMIX:
                return source["job_id"]
            # a source sent in this run is judged by this run's try, not an earlier one's
            failure = None
            if job.remix_source not in self._unfinished:
                failure = source_failure(job.remix_source, source)
            if failure is not None:
                raise failure
            await sleep_unless_stopped(self._stop, SOURCE_CHECK_SECONDS)
        raise StopRequested("following ended before the source row completed")

    def _gate(self, job: Job) -> _Gate:
        signature = tuple(
            job.fields.get(name, "") for name in ("model", "prompt", "seconds", "size")
        )
        return self._gates.setdefault(signature, _Gate())

    def _fail(self, job: Job, status: str, error: ApiError) -> str:
        self._ledger.record(job.key, {**request_columns(job), **failure_columns(status, error)})
        return status


@dataclass
class _Create:
    """What is known about one row's create across its tries."""

    maybe_sent: bool  # a create may have reached the provider: look it up before resending
    last_answer: ApiError | None = None  # the provider's last definite "no" (429, 5xx, …)
    lost_answer: ApiError | None = None  # why this run does not know what its create made


def _unresolved_message(job: Job, create: _Create, detail: str) -> str:
    """Why a row is ``unresolved``, and the ways out of it."""
    lost = create.lost_answer
    cause = lost.message if lost is not None else "an earlier run ended before its answer"
    return (
        f"a create may have been sent ({cause}) and {detail}: not resent, to avoid paying "
        "twice. Check the provider's dashboard, then `batchgen resolve RESULTS "
        f"{job.key} --job-id ID` (the job is there) or `--not-made` (it is not); "
        "--resend-unresolved sends it without checking"
    )


class _Gate:
    """Creates of one content run together; a lookup for that content runs alone, and
    waiting lookups go first so that a stream of identical creates cannot starve them."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()
        self._creates = 0
        self._looking = False
        self._lookups_waiting = 0

    @contextlib.asynccontextmanager
    async def creating(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._looking and not self._lookups_waiting)
            self._creates += 1
        try:
            yield
        finally:
            async with self._changed:
                self._creates -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def looking(self) -> AsyncIterator[None]:
        async with self._changed:
            self._lookups_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._looking and not self._creates)
            finally:
                self._lookups_waiting -= 1
            self._looking = True
        try:
            yield
        finally:
            async with self._changed:
                self._looking = False
                self._changed.notify_all()
