"""Following jobs to the end: polling each until it is final and downloading it at once.

Every followed job has its own small task: wait, poll, and as soon as the job is complete
download it (official download links expire about an hour after completion, so a finished
job must not wait for the rest of the batch). The tasks share one pacer (``poll_rpm``)
and two concurrency caps (polls, downloads), so thousands of jobs cost one request at a
time at the provider's pace. Jobs handed over by a running submitter (``incoming``) join
while the rest are followed.

Without ``wait`` each job gets one step (a poll, and a download if it is complete); with
``wait`` the steps repeat until every job is final, the timeout runs out, or ``stop`` is
set. Then nothing new is sent (a poll or download waiting for its slot or for a retry
gives up), requests in flight finish and are recorded within the grace period, and
:func:`follow_jobs` returns; a rerun continues from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.errors import RetryableError, StopRequested
from batchgen.follow.download import VIDEO, Downloader
from batchgen.follow.naming import FileNamer
from batchgen.follow.poll import Cadence, Poller, PollSchedule
from batchgen.ledger import Ledger
from batchgen.progress import Progress
from batchgen.provider.client import VideoClient
from batchgen.provider.pacing import Pacer, Sleep, Throttle
from batchgen.provider.retry import RetrySettings
from batchgen.signals import DEFAULT_GRACE_SECONDS
from batchgen.status import TROUBLE, is_pending

#: Exit code proposed for a wait that timed out with jobs still running.
EXIT_TIMED_OUT = 4


@dataclass(frozen=True)
class FollowSettings:
    """What to follow jobs for, how long, and how hard to push the provider."""

    wait: bool = False  # keep going until every job is final (or timeout)
    timeout: float | None = None  # seconds, for wait
    poll_rpm: float | None = 120.0
    concurrency: int = 4  # polls in flight, and downloads in flight
    retry: RetrySettings = field(default_factory=RetrySettings)
    download_dir: Path | None = None  # None: poll only
    variants: tuple[str, ...] = (VIDEO,)
    thumbnails: bool = False  # the thumbnail too, where the provider makes one
    name_template: str | None = None
    poll_interval: float = 5.0  # first interval; adapts
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # for requests in flight after stop/timeout


@dataclass(frozen=True)
class Timing:
    """Where following gets time and chance from; tests inject their own."""

    clock: Callable[[], float] = time.monotonic  # for pacing and schedules
    sleep: Sleep = asyncio.sleep
    wall: Callable[[], float] = time.time  # compared with the provider's expires_at
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class FollowTally:
    """Where the followed jobs stand at the end, and what this run downloaded."""

    statuses: Counter[str] = field(default_factory=Counter)  # final status -> jobs
    pending: int = 0  # not final yet (or, when downloading, complete but not downloaded)
    files: int = 0  # files written by this run (every variant)
    bytes: int = 0
    errors: int = 0  # polls or downloads given up on in this run (see the log)
    timed_out: bool = False
    interrupted: bool = False
    held_back_seconds: float = 0.0  # how long the provider's 429s held polls and downloads

    @property
    def followed(self) -> int:
        """Jobs followed in this run."""
        return sum(self.statuses.values()) + self.pending

    @property
    def needs_attention(self) -> bool:
        """A job failed, expired or was lost, or a request was given up on."""
        return self.errors > 0 or any(self.statuses[s] for s in TROUBLE)

    @property
    def exit_code(self) -> int:
        """1 something needs attention; 4 a wait timed out with jobs pending; else 0.

        A stop by a signal is the caller's to report (130/143), before this.
        """
        if self.needs_attention:
            return 1
        return EXIT_TIMED_OUT if self.timed_out and self.pending else 0


async def follow_jobs(
    client: VideoClient,
    ledger: Ledger,
    settings: FollowSettings,
    stop: asyncio.Event,
    *,
    incoming: asyncio.Queue[str | None] | None = None,
    interactive: bool = False,
    expected: int = 0,
    logger: logging.Logger,
    timing: Timing | None = None,
) -> FollowTally:
    """Poll (and download) every unfinished job of ``ledger``, and those put on ``incoming``.

    ``incoming`` takes keys from a running submitter; ``None`` on it means no more will
    come. ``expected`` is how many it may bring (the rows the run sends), so the bar's
    total is right from the start instead of growing. Raises :class:`UsageError` for a
    bad name template or variant (before any request), and re-raises what cannot be
    handled per job (a refused key, a full disk).
    """

    def bar(waiting: int) -> Progress:
        return Progress(waiting + expected, "poll", interactive=interactive, logger=logger)

    follower = _Follower(client, ledger, settings, stop, bar, logger, timing or Timing())
    try:
        return await follower.run(incoming)
    finally:
        follower.progress.close()


class _Follower:
    """The tasks of one :func:`follow_jobs` call."""

    def __init__(
        self,
        client: VideoClient,
        ledger: Ledger,
        settings: FollowSettings,
        stop: asyncio.Event,
        bar: Callable[[int], Progress],  # given the jobs waiting at the start
        logger: logging.Logger,
        timing: Timing,
    ) -> None:
        self._ledger = ledger
        self._settings = settings
        self._stop = stop
        self._logger = logger
        self._timing = timing
        self._halt = asyncio.Event()  # stop, timeout or a task's unexpected error
        # after a halt, a poll or download not yet on the wire is not sent at all
        pacer = self._pacer = Pacer(settings.poll_rpm, clock=timing.clock, sleep=timing.sleep)
        throttle = Throttle(pacer, settings.concurrency, stop=self._halt)
        self._poller = Poller(client, ledger, throttle, settings.retry, logger=logger)
        self._downloader = _downloader(client, ledger, settings, throttle, timing, logger)
        # the provider's status cannot change faster than its refresh period: poll no faster
        self._schedule = PollSchedule(
            settings.poll_interval, timing.rng, floor=client.profile.refresh_seconds
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failure: BaseException | None = None
        self._waiting = [k for k in ledger.states if self._has_work(k)]  # at the start
        self.progress = bar(len(self._waiting))
        self.tally = FollowTally()

    async def run(self, incoming: asyncio.Queue[str | None] | None) -> FollowTally:
        for key in self._waiting:
            self._follow(key, fresh=False)
        watcher = asyncio.create_task(self._watch())
        try:
            if incoming is not None:
                await self._take(incoming)
                # every job sent has come: fewer than expected when some were not created
                self.progress.settle(len(self._tasks))
            await self._drain()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if self._failure is not None:
            raise self._failure
        return self._count()

    def _has_work(self, key: str) -> bool:
        state = self._ledger.states.get(key, {})
        return is_pending(state) or (self._downloader is not None and self._downloader.wants(key))

    def _follow(self, key: str, *, fresh: bool) -> None:
        """Start following ``key`` (once), unless everything is stopping."""
        if key in self._tasks or self._halt.is_set():
            return
        if key not in self._ledger.states:
            self._logger.warning("follow %s: not in the results file; ignored", key)
            return
        delay = 0.0  # a complete job is downloaded at once: its link is ticking
        if is_pending(self._ledger.states[key]):
            delay = self._schedule.first_delay(fresh=fresh, spread=self._settings.wait)
        task = asyncio.create_task(self._run_job(key, delay), name=f"follow {key}")
        task.add_done_callback(self._task_done)
        self._tasks[key] = task
        self.progress.at_least(len(self._tasks))

    async def _take(self, incoming: asyncio.Queue[str | None]) -> None:
        """Follow keys from the submitter until it says it is done (``None``) or a halt."""
        while not self._halt.is_set():
            getter = asyncio.ensure_future(incoming.get())
            await self._first_of(getter)
            if not getter.done():
                getter.cancel()
                return
            key = getter.result()
            if key is None:
                return
            self._follow(key, fresh=True)

    async def _run_job(self, key: str, delay: float) -> None:
        """Steps for one job until it is done, one pass is over, or a halt."""
        cadence = self._schedule.cadence()
        while self._has_work(key):
            await self._pause(delay)
            if self._halt.is_set():
                return
            try:
                next_delay = await self._step(key, cadence)
            except StopRequested:
                return  # halted before its request went out: the job stays as it was
            if next_delay is None or not self._settings.wait:
                break
            delay = next_delay
        if not self._has_work(key):
            self.progress.advance(self._ledger.states[key]["status"])

    async def _step(self, key: str, cadence: Cadence) -> float | None:
        """A poll, then the download once complete; seconds to the next step, or None."""
        if is_pending(self._ledger.states[key]):
            result = await self._poller.poll(key)
            if result.error is not None:
                return self._again_after(result.error, cadence)
            if is_pending(self._ledger.states[key]):
                return self._schedule.next_delay(cadence, result)
        if self._downloader is None or self._halt.is_set() or not self._downloader.wants(key):
            return None
        fetched = await self._downloader.fetch(key)
        self.tally.files += fetched.files
        self.tally.bytes += fetched.bytes
        if fetched.again:
            return self._again_after(fetched.error, cadence)
        if fetched.error is not None:
            self.tally.errors += 1
        return None

    def _again_after(self, error: Exception | None, cadence: Cadence) -> float | None:
        """Back off and try again (when waiting); a final error is given up for this run."""
        retryable = error is None or isinstance(error, RetryableError)
        if retryable and self._settings.wait:
            return self._schedule.backoff(cadence)
        if error is not None:
            self.tally.errors += 1
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if everything is halted meanwhile."""
        if seconds > 0 and not self._halt.is_set():
            await self._first_of(asyncio.ensure_future(self._timing.sleep(seconds)))

    async def _first_of(self, waiter: asyncio.Future[Any]) -> None:
        """Wait for ``waiter`` or a halt, whichever comes first; cancel ``waiter`` if halted."""
        halted = asyncio.ensure_future(self._halt.wait())
        try:
            await asyncio.wait({waiter, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halted.cancel()

    async def _watch(self) -> None:
        """Halt everything on ``stop``, or when a wait's timeout runs out."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stop.wait())]
        if self._settings.wait and self._settings.timeout is not None:
            waiters.append(asyncio.ensure_future(self._timing.sleep(self._settings.timeout)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._stop.is_set():
            self.tally.interrupted = True
        else:
            self.tally.timed_out = True
        self._halt.set()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """An unexpected error in one job's task (a full disk, a refused key) halts all."""
        if not task.cancelled() and task.exception() is not None:
            self._failure = self._failure or task.exception()
            self._halt.set()

    async def _drain(self) -> None:
        """Wait for every job's task; after a halt, in-flight requests get a grace period."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        everything = asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._first_of(everything)
            if not everything.done():
                await asyncio.wait(tasks, timeout=self._settings.grace_seconds)
        finally:
            for task in tasks:
                task.cancel()  # only those still running past the grace period
            with contextlib.suppress(asyncio.CancelledError):
                await everything

    def _count(self) -> FollowTally:
        """Where each followed job stands now."""
        tally = self.tally
        for key in self._tasks:
            if self._has_work(key):
                tally.pending += 1
            else:
                tally.statuses[self._ledger.states[key]["status"]] += 1
        tally.timed_out = tally.timed_out and tally.pending > 0
        tally.held_back_seconds = self._pacer.held_back
        return tally


def _downloader(
    client: VideoClient,
    ledger: Ledger,
    settings: FollowSettings,
    polls: Throttle,
    timing: Timing,
    logger: logging.Logger,
) -> Downloader | None:
    """A downloader when a folder is given: the polls' pacer and stop, but its own cap, so
    downloads never starve polls."""
    if settings.download_dir is None:
        return None
    namer = FileNamer(settings.download_dir, settings.name_template, ledger.states, ledger.header)
    return Downloader(
        client,
        ledger,
        Throttle(polls.pacer, settings.concurrency, stop=polls.stop),
        settings.retry,
        namer,
        variants=settings.variants,
        thumbnails=settings.thumbnails,
        wall=timing.wall,
        logger=logger,
    )
