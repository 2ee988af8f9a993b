"""Submission: a pool of asyncio workers that turns planned rows into provider jobs.

Every create follows the same protocol, which is what "never pay twice" rests on:

1. take a request slot (concurrency cap and pacing);
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from batchgen.client import Video, VideoClient
from batchgen.errors import ApiError, OutcomeUnknownError, RejectedError, UnresolvedError
from batchgen.jobs import Job
from batchgen.ledger import ATTENTION_STATUSES, Ledger, Status
from batchgen.pacing import Throttle
from batchgen.plan import FAILED_SOURCES, READY_FOR_REMIX, RECONCILE, Step
from batchgen.poll import video_changes
from batchgen.progress import Progress
from batchgen.reconcile import FOUND, UNKNOWN, Reconciler
from batchgen.retry import RetrySettings, retrying

#: How often a remix checks whether its source row has completed (an in-memory look).
SOURCE_CHECK_SECONDS = 0.2


@dataclass(frozen=True)
class SubmitSettings:
    """How hard to push the provider, and what to do with creates of unknown outcome."""

    concurrency: int = 4
    rpm: float | None = 60.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    resend_unresolved: bool = False
    grace_seconds: float = 30.0  # how long in-flight requests may finish after a stop signal


@dataclass
class SubmitTally:
    """What this run's submissions came to."""

    possible_duplicates: int = 0
    interrupted: bool = False


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
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._throttle = throttle
        self._settings = settings
        self._progress = progress
        self._stop = stop
        self._on_submitted = on_submitted  # e.g. hands new jobs to the poller at once
        self._reconciler = Reconciler(client, ledger.job_ids, throttle)
        self.tally = SubmitTally()

    async def run(self, steps: Sequence[Step]) -> SubmitTally:
        """Submit every step, or as many as a stop signal allows.

        Remixes of other rows go last, so that waiting for their sources holds no one up.
        """
        queue = deque(sorted(steps, key=lambda step: bool(step.job.remix_source)))
        workers = [
            asyncio.create_task(self._work(queue))
            for _ in range(min(self._settings.concurrency, len(queue)))
        ]
        if workers:
            await self._until_done_or_stopped(workers)
        self.tally.interrupted = self._stop.is_set()
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
            self._progress.advance(outcome)

    async def submit(self, step: Step) -> str:
        """Take one row to a job id or a final reason; returns the row's new status."""
        job = step.job
        try:
            video = await self._create_once(job, maybe_sent=step.action == RECONCILE)
        except _StoppedWaiting:
            return "not sent"  # nothing was sent: the next run sends it
        except RejectedError as exc:
            return self._fail(job, Status.REJECTED, exc)
        except UnresolvedError as exc:
            return self._fail(job, Status.UNRESOLVED, exc)
        except ApiError as exc:
            return self._fail(job, Status.ERROR, exc)
        changes = {"job_id": video.id, **video_changes(video)}
        state = self._ledger.record(job.key, changes, durable=True)
        if self._on_submitted is not None:
            self._on_submitted(job.key)
        return state["status"]

    async def _create_once(self, job: Job, *, maybe_sent: bool) -> Video:
        """Create the job, retrying what can be retried, never resending a create blindly."""
        async for attempt in retrying(self._settings.retry, self._throttle.pacer):
            with attempt:
                if maybe_sent:
                    found = await self._look_up(job)
                    if found is not None:
                        return found
                maybe_sent = True
                try:
                    return await self._send(job)
                except OutcomeUnknownError:
                    raise
                except ApiError:
                    maybe_sent = False  # the provider answered: nothing was created
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _look_up(self, job: Job) -> Video | None:
        intent = self._ledger.states.get(job.key, {}).get("timestamp", "")
        lookup = await self._reconciler.look_up(job, intent)
        if lookup.outcome == FOUND:
            return lookup.video
        if lookup.outcome == UNKNOWN:
            if not self._settings.resend_unresolved:
                raise UnresolvedError(
                    f"a create may have been sent and {lookup.detail}: not resent, to avoid "
                    "paying twice (check the provider's console; --resend-unresolved sends it)"
                )
            self.tally.possible_duplicates += 1
        return None

    async def _send(self, job: Job) -> Video:
        if job.remix_source:
            job = replace(job, remix_of=await self._source_job_id(job))
        async with self._throttle:
            attempts = int(self._ledger.states.get(job.key, {}).get("attempts") or 0) + 1
            changes = {**request_columns(job), "status": Status.SUBMITTING, "attempts": attempts}
            changes.update(error_code="", error_message="")
            self._ledger.record(job.key, changes, durable=True)
            video = await self._client.create(job, idempotency_key=job.key)
        self._throttle.pacer.succeeded()
        return video

    async def _source_job_id(self, job: Job) -> str:
        """Wait until the row ``job`` remixes has completed (the follower records it)."""
        while not self._stop.is_set():
            source = self._ledger.states.get(job.remix_source, {})
            status = source.get("status", "")
            if status in READY_FOR_REMIX:
                return source["job_id"]
            if status in FAILED_SOURCES or status in ATTENTION_STATUSES:
                raise RejectedError(f"its source row {job.remix_source} ended {status}")
            await asyncio.sleep(SOURCE_CHECK_SECONDS)
        raise _StoppedWaiting()

    def _fail(self, job: Job, status: str, error: ApiError) -> str:
        changes = {
            **request_columns(job),
            "status": status,
            "error_code": error.code or (str(error.status) if error.status else ""),
            "error_message": error.message,
        }
        self._ledger.record(job.key, changes)
        return status


class _StoppedWaiting(Exception):
    """A stop signal arrived while a remix waited for its source: nothing was sent."""


def request_columns(job: Job) -> dict[str, object]:
    """The ledger columns describing what is sent for ``job`` (and its passthrough)."""
    remix = job.remix_of or job.remix_source
    columns = {**job.passthrough, **job.fields, "row": job.row, "image": job.image_text}
    return {**columns, "remix_of": remix} if remix else columns
