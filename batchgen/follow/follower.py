"""Following jobs to the end: status checks where completions are due, downloads at once.

Where the provider lists its jobs, one sweeper reads the list a page of 100 at a time
(:mod:`batchgen.follow.sweep`); elsewhere each job has its own small task that polls it
when it is expected to be done (:mod:`batchgen.follow.estimate`), never more often than
the provider's refresh period. As soon as a job is complete it is downloaded (official
download links expire about an hour after completion). Status checks and downloads have
a pacer and a concurrency cap each, so a queue of downloads never delays the status
checks that find the next finished job, nor the other way round. Jobs handed over by a
running submitter (``incoming``) join while the rest are followed.

Without ``wait`` each job gets one step (a status check, and a download if it is
complete); with ``wait`` the steps repeat until every job is final, the timeout runs
out, or ``stop`` is set. Then nothing new is sent (a request waiting for its slot or for a
retry gives up), requests in flight finish and are recorded within the grace period, and
:func:`follow_jobs` returns; a rerun continues from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgen.errors import RetryableError, StopRequested
from batchgen.follow.download import VIDEO, Downloader, FetchResult
from batchgen.follow.estimate import GROWTH, Estimator
from batchgen.follow.naming import FileNamer
from batchgen.follow.poll import Poller, PollResult
from batchgen.follow.sweep import Sweeper, provider_duration
from batchgen.follow.tally import FollowTally
from batchgen.ledger import Ledger, epoch_of
from batchgen.progress import Progress
from batchgen.provider.client import VideoClient
from batchgen.provider.pacing import Pacer, Sleep, Throttle
from batchgen.provider.retry import RetrySettings
from batchgen.signals import DEFAULT_GRACE_SECONDS
from batchgen.status import is_pending

#: Status checks a minute to start from; a provider's 429s bring it down to what it takes.
DEFAULT_STATUS_RPM = 600.0
#: The longest wait before trying a failed status check or download again.
MAX_BACKOFF = 60.0
#: Jobs polled one by one while nothing is known of how long they take (the rest wait).
PROBES = 3
#: Backoffs vary by this fraction either way, so failed requests do not come back in step.
JITTER = 0.2


@dataclass(frozen=True)
class FollowSettings:
    """What to follow jobs for, how long, and how hard to push the provider."""

    wait: bool = False  # keep going until every job is final (or timeout)
    timeout: float | None = None  # seconds, for wait
    poll_rpm: float | None = DEFAULT_STATUS_RPM  # status checks (polls, list pages); None: unpaced
    concurrency: int = 4  # status checks in flight
    retry: RetrySettings = field(default_factory=RetrySettings)
    download_dir: Path | None = None  # None: poll only
    variants: tuple[str, ...] = (VIDEO,)
    thumbnails: bool = False  # the thumbnail too, where the provider makes one
    name_template: str | None = None
    poll_interval: float = 5.0  # first check of a job while nothing is known of its duration
    grace_seconds: float = DEFAULT_GRACE_SECONDS  # for requests in flight after stop/timeout
    download_concurrency: int = 4  # downloads in flight, apart from status checks
    download_rpm: float | None = None  # None: only the cap and the provider's 429s pace them
    # polled one by one, first looks wait until a job is surely done; off where a cap on
    # running jobs holds creates back (each job seen done at once frees a slot sooner)
    sure_looks: bool = True


@dataclass(frozen=True)
class Timing:
    """Where following gets time and chance from; tests inject their own."""

    clock: Callable[[], float] = time.monotonic  # for pacing
    sleep: Sleep = asyncio.sleep
    wall: Callable[[], float] = time.time  # job times, compared with the provider's
    rng: random.Random = field(default_factory=random.Random)


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
    on_given_up: Callable[[str], None] | None = None,
) -> FollowTally:
    """Poll (and download) every unfinished job of ``ledger``, and those put on ``incoming``.

    ``incoming`` takes keys from a running submitter; ``None`` on it means no more will
    come. ``expected`` is how many it may bring (the rows the run sends), so the bar's
    total is right from the start instead of growing. ``on_given_up`` hears of a job
    still pending that this run stops following after an error it cannot retry. Raises
    :class:`UsageError` for a bad name template or variant (before any request), and
    re-raises what cannot be handled per job (a refused key, a full disk).
    """

    def bar(waiting: int) -> Progress:
        return Progress(waiting + expected, "poll", interactive=interactive, logger=logger)

    timing = timing or Timing()
    follower = _Follower(client, ledger, settings, stop, bar, logger, timing, on_given_up)
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
        on_given_up: Callable[[str], None] | None = None,
    ) -> None:
        self._ledger = ledger
        self._on_given_up = on_given_up
        self._settings = settings
        self._stop = stop
        self._logger = logger
        self._timing = timing
        self._halt = asyncio.Event()  # stop, timeout or a task's unexpected error
        # after a halt, a status check or download not yet on the wire is not sent at all
        self._pacers = (_pacer(settings.poll_rpm, timing), _pacer(settings.download_rpm, timing))
        status = Throttle(self._pacers[0], settings.concurrency, stop=self._halt)
        downloads = Throttle(self._pacers[1], settings.download_concurrency, stop=self._halt)
        self._poller = Poller(client, ledger, status, settings.retry, logger=logger)
        self._downloader = _downloader(client, ledger, settings, downloads, timing, logger)
        # the content endpoint says "not ready" until a job is done: the download of a job
        # surely done is its status check, one request instead of two
        self._fetch_first = bool(
            settings.wait and self._downloader and client.profile.video.content_says_not_ready
        )
        # the provider's status cannot change faster than its refresh period: no faster
        self._floor = client.profile.refresh_seconds
        # polled one by one, a few probes learn how long jobs take while the rest wait
        probes = None if client.profile.can_list else PROBES
        self._estimator = Estimator(
            settings.poll_interval, self._floor, probes=probes, sure=settings.sure_looks
        )
        self._learned = asyncio.Event()  # set (and replaced) when the estimator learns
        self._not_before: dict[str, float] = {}  # no poll of a key sooner (refresh, hints)
        self._sweeper = (
            Sweeper(client, ledger, status, settings.retry, self._estimator, wall=timing.wall,
                    floor=self._floor, logger=logger)
            if client.profile.can_list
            else None
        )  # fmt: skip
        self._sweeping: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._followed: dict[str, None] = {}  # every key followed, in order
        self._failures: Counter[str] = Counter()  # failed tries in a row, by key ("" sweeps)
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
                self.progress.settle(len(self._followed))
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
        if key in self._followed or self._halt.is_set():
            return
        if key not in self._ledger.states:
            self._logger.warning("follow %s: not in the results file; ignored", key)
            return
        self._followed[key] = None
        self.progress.at_least(len(self._followed))
        state = self._ledger.states[key]
        if not is_pending(state):
            self._start(key, 0.0)  # a complete job is downloaded at once: its link is ticking
            return
        now = self._timing.wall()  # a fresh job's create has just been answered
        sent_at = now if fresh else _sent_at(state, now)
        self._estimator.track(key, sent_at)
        if self._sweeper is not None:
            self._sweeper.add(key, sent_at)
            self._keep_sweeping()
            return
        delay = 0.0
        if self._settings.wait:  # one pass looks at once; a wait looks when it is worth it
            if fresh:  # nothing can have changed before the provider's next refresh
                self._not_before[key] = now + self._floor
            delay = max(self._estimator.due(key), self._not_before.get(key, 0.0)) - now
        self._start(key, max(delay, 0.0))

    def _start(self, key: str, delay: float) -> None:
        """A task for ``key``'s own steps (polls and its download), unless one is running."""
        running = self._tasks.get(key)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._run_job(key, delay), name=f"follow {key}")
        task.add_done_callback(self._task_done)
        self._tasks[key] = task

    async def _take(self, incoming: asyncio.Queue[str | None]) -> None:
        """Follow keys from the submitter until it says it is done (``None``) or a halt."""
        while not self._halt.is_set():
            getter = asyncio.ensure_future(incoming.get())
            await self._first_of(getter)
            if not getter.done() or getter.cancelled():  # halted first: it was cancelled
                return
            key = getter.result()
            if key is None:
                return
            self._follow(key, fresh=True)

    async def _run_job(self, key: str, delay: float) -> None:
        """Steps for one job until it is done, one pass is over, or a halt."""
        while self._has_work(key):
            await self._until_due(key, delay)
            if self._halt.is_set():
                return
            try:
                next_delay = await self._step(key)
            except StopRequested:
                return  # halted before its request went out: the job stays as it was
            if next_delay is None or not self._settings.wait:
                break
            delay = next_delay
        self._settle(key)

    def _settle(self, key: str) -> None:
        """Count ``key`` on the bar once nothing is left to do for it."""
        if not self._has_work(key):
            self.progress.advance(self._ledger.states[key]["status"])

    async def _step(self, key: str) -> float | None:
        """A poll, then the download once complete; seconds to the next step, or None.
        A job surely done is downloaded at once where that tells its status too."""
        if is_pending(self._ledger.states[key]):
            if self._fetch_first and self._estimator.sure(key):
                return await self._fetch_unpolled(key)
            result = await self._poller.poll(key)
            if result.error is not None:
                return self._again_after(key, result.error)
            self._failures.pop(key, None)
            if is_pending(self._ledger.states[key]):
                return self._next_check(key, result)
            duration = None if result.video is None else provider_duration(result.video)
            self._finished(key, duration)
        return await self._download(key)

    async def _download(self, key: str) -> float | None:
        if self._downloader is None or self._halt.is_set() or not self._downloader.wants(key):
            return None
        return self._downloaded(key, await self._downloader.fetch(key))

    def _downloaded(self, key: str, fetched: FetchResult) -> float | None:
        """Count what a download attempt wrote; seconds to the next try, or None."""
        self.tally.files += fetched.files
        self.tally.bytes += fetched.bytes
        if fetched.again:
            return self._again_after(key, fetched.error)
        if fetched.error is not None:
            self.tally.errors += 1
        return None

    async def _fetch_unpolled(self, key: str) -> float | None:
        """Download ``key``, surely done, before any status check; if it is not handed
        over, a status check soon says why."""
        assert self._downloader is not None
        fetched = await self._downloader.fetch_unconfirmed(key)
        if fetched is not None:
            self._estimator.forget(key)  # how long it took is not known: no sample
            return self._downloaded(key, fetched)
        now = self._timing.wall()
        self._estimator.doubt(key, now)
        self._not_before[key] = now + self._floor
        return max(self._estimator.due(key), self._not_before[key]) - now

    def _next_check(self, key: str, result: PollResult) -> float:
        """Seconds until ``key`` is worth polling again (the provider's hint is a minimum)."""
        now = self._timing.wall()
        progress = 0.0 if result.video is None else float(result.video.progress)
        self._estimator.seen(key, now, progress)
        self._not_before[key] = now + max(self._floor, result.poll_after or 0.0)
        return max(self._estimator.due(key), self._not_before[key]) - now

    def _finished(self, key: str, duration: float | None) -> None:
        """``key`` is final: teach the estimator, and wake the jobs waiting for a lesson."""
        lessons = self._estimator.lessons
        self._estimator.finished(key, self._timing.wall(), duration)
        if self._estimator.lessons != lessons:
            self._learned.set()
            self._learned = asyncio.Event()

    async def _until_due(self, key: str, delay: float) -> None:
        """Sleep ``delay`` seconds, or less when what other jobs taught the estimator
        brings ``key``'s check forward."""
        wake = self._timing.wall() + delay
        while not self._halt.is_set():
            now = self._timing.wall()
            if key in self._estimator:  # pending: a lesson may bring it forward
                due = max(self._estimator.due(key), self._not_before.get(key, 0.0))
                wake = min(wake, due)
            if now >= wake:
                return
            lesson = asyncio.ensure_future(self._learned.wait())
            await self._first_of(asyncio.ensure_future(self._timing.sleep(wake - now)), lesson)

    def _again_after(self, key: str, error: Exception | None) -> float | None:
        """Back off and try again (when waiting); a final error is given up for this run."""
        retryable = error is None or isinstance(error, RetryableError)
        if retryable and self._settings.wait:
            return self._backoff(key)
        if error is not None:
            self.tally.errors += 1
            if self._on_given_up is not None and is_pending(self._ledger.states[key]):
                self._on_given_up(key)
        return None

    def _backoff(self, key: str) -> float:
        """A longer wait after each failed try in a row of ``key`` (``""``: the sweeps)."""
        self._failures[key] += 1
        seconds = min(MAX_BACKOFF, self._settings.poll_interval * GROWTH ** self._failures[key])
        delay = max(seconds * self._timing.rng.uniform(1.0 - JITTER, 1.0 + JITTER), self._floor)
        self._not_before[key] = self._timing.wall() + delay  # no estimate cuts it short
        return delay

    def _keep_sweeping(self) -> None:
        """Make sure the sweeper's task runs while it has jobs."""
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.create_task(self._sweep(), name="status sweeps")
            self._sweeping.add_done_callback(self._task_done)

    async def _sweep(self) -> None:
        """Sweep the list when enough completions are due, until no job is left to follow."""
        sweeper = self._sweeper
        assert sweeper is not None
        while len(sweeper) and not self._halt.is_set():
            if self._settings.wait:
                await self._pause(max(sweeper.next_at() - self._timing.wall(), 0.0))
                if self._halt.is_set():
                    return
            try:
                result = await sweeper.sweep(last=not self._settings.wait)
            except StopRequested:
                return
            for key in result.finished:
                self._start(key, 0.0) if self._has_work(key) else self._settle(key)
            for key in result.missing:  # the list does not show it: poll it on its own
                self._start(key, 0.0)
            if not self._settings.wait:
                return
            if result.error is not None:
                await self._pause(self._backoff(""))
            else:
                self._failures.pop("", None)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if everything is halted meanwhile."""
        if seconds > 0 and not self._halt.is_set():
            await self._first_of(asyncio.ensure_future(self._timing.sleep(seconds)))

    async def _first_of(self, *waiters: asyncio.Future[Any]) -> None:
        """Wait for the first of ``waiters`` or a halt; cancel the others."""
        halted = asyncio.ensure_future(self._halt.wait())
        try:
            await asyncio.wait({*waiters, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (*waiters, halted):
                if not waiter.done():
                    waiter.cancel()

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
        """An unexpected error in one task (a full disk, a refused key) halts all."""
        if not task.cancelled() and task.exception() is not None:
            self._failure = self._failure or task.exception()
            self._halt.set()

    def _every_task(self) -> list[asyncio.Task[None]]:
        return [*self._tasks.values(), *([self._sweeping] if self._sweeping else [])]

    def _running(self) -> list[asyncio.Task[None]]:
        return [task for task in self._every_task() if not task.done()]

    async def _drain(self) -> None:
        """Wait for every task (sweeps start downloads as they go); after a halt, the
        requests in flight get a grace period."""
        try:
            while (running := self._running()) and not self._halt.is_set():
                await self._first_of(asyncio.ensure_future(asyncio.wait(running)))
            if running := self._running():
                await asyncio.wait(running, timeout=self._settings.grace_seconds)
        finally:
            tasks = self._every_task()
            for task in tasks:
                task.cancel()  # only those still running past the grace period
            await asyncio.gather(*tasks, return_exceptions=True)

    def _count(self) -> FollowTally:
        """Where each followed job stands now."""
        tally = self.tally
        for key in self._followed:
            if self._has_work(key):
                tally.pending += 1
            else:
                tally.statuses[self._ledger.states[key]["status"]] += 1
        tally.timed_out = tally.timed_out and tally.pending > 0
        tally.held_back_seconds = sum(pacer.held_back for pacer in self._pacers)
        return tally


def _pacer(rpm: float | None, timing: Timing) -> Pacer:
    return Pacer(rpm, clock=timing.clock, sleep=timing.sleep)


def _sent_at(state: Mapping[str, str], now: float) -> float:
    """When ``state``'s create went out (our clock), else ``now``."""
    for column in ("submitted_at", "timestamp"):
        sent = epoch_of(state.get(column) or "")
        if sent is not None:
            return sent
    return now


def _downloader(
    client: VideoClient,
    ledger: Ledger,
    settings: FollowSettings,
    throttle: Throttle,
    timing: Timing,
    logger: logging.Logger,
) -> Downloader | None:
    """A downloader when a folder is given, with its own ``throttle``: a queue of downloads
    never delays the status checks, nor they the downloads."""
    if settings.download_dir is None:
        return None
    namer = FileNamer(settings.download_dir, settings.name_template, ledger.states, ledger.header)
    return Downloader(
        client,
        ledger,
        throttle,
        settings.retry,
        namer,
        variants=settings.variants,
        thumbnails=settings.thumbnails,
        wall=timing.wall,
        logger=logger,
    )
