"""Polling: one look at a job, recorded only when it changed, and when to look again.

A poll goes through the same throttle (concurrency cap, even pacing, shared 429 pause)
and retry policy as a create. The ledger gets a line only when the job's status or
progress moved, so a night of polling a slow job does not bury its history. "No such
job" as the profile says it looks (a 404, new-api's 400 ``task_not_exist``) means the
provider no longer knows the job: it is ``lost``, which is final. A 429 is waited through
(within ``--give-up-after``), never counted as a failed try.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from batchgen.columns import failure_columns, video_changes
from batchgen.errors import ApiError, NotFoundError, RejectedError
from batchgen.ledger import Ledger
from batchgen.provider.client import Video, VideoClient
from batchgen.provider.pacing import Throttle
from batchgen.provider.retry import RetrySettings, retrying
from batchgen.status import Status

#: Answers that mean the key itself is refused: every other poll would fail the same way.
AUTH_FAILURES = frozenset({401, 403})

#: Each unchanged poll waits this much longer than the last, up to ``MAX_INTERVAL``.
GROWTH = 1.5
MAX_INTERVAL = 60.0
#: Intervals vary by this fraction either way, so jobs drift apart instead of in step.
JITTER = 0.2

T = TypeVar("T")


async def paced(throttle: Throttle, retry: RetrySettings, call: Callable[[], Awaitable[T]]) -> T:
    """Make one request through ``throttle``, retrying what can be retried, like a create.

    A stop set on ``throttle`` ends the waits for a slot and between tries (StopRequested).
    """
    async for attempt in retrying(retry, throttle.pacer, sleep=throttle.sleep):
        with attempt:
            async with throttle:
                result = await call()
            throttle.pacer.succeeded()
            return result
    raise AssertionError("unreachable: tenacity reraises the last error")


@dataclass(frozen=True)
class PollResult:
    """What one poll found: the job's status now, and whether to expect a change soon."""

    status: str
    changed: bool = False  # status or progress moved (a line was recorded)
    status_changed: bool = False
    poll_after: float | None = None  # seconds the provider asked us to wait
    error: ApiError | None = None  # the poll failed; ``status`` is the last known one


class Poller:
    """Polls jobs of one ledger through one client."""

    def __init__(
        self,
        client: VideoClient,
        ledger: Ledger,
        throttle: Throttle,
        retry: RetrySettings,
        *,
        logger: logging.Logger,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._throttle = throttle
        self._retry = retry
        self._logger = logger

    async def poll(self, key: str) -> PollResult:
        """Retrieve ``key``'s job and record its new status or progress, if either moved.

        Raises :class:`RejectedError` for 401/403 (the key is refused: no poll can work);
        other failures come back in :attr:`PollResult.error`.
        """
        state = self._ledger.states[key]
        job_id = state["job_id"]
        try:
            polled = await paced(self._throttle, self._retry, lambda: self._client.poll(job_id))
        except NotFoundError as exc:
            self._ledger.record(key, failure_columns(Status.LOST, exc))
            return PollResult(Status.LOST, changed=True, status_changed=True)
        except RejectedError as exc:
            if exc.status in AUTH_FAILURES:
                raise
            return self._failed(key, exc)
        except ApiError as exc:
            return self._failed(key, exc)
        video = polled.video
        status_changed = self._ledger.states[key].get("status") != video.status
        changed = self._apply(key, video)
        return PollResult(video.status, changed, status_changed, polled.poll_after)

    def _apply(self, key: str, video: Video) -> bool:
        """Record ``video``'s state when its status or progress differs from the ledger's."""
        state = self._ledger.states[key]
        if (state.get("status"), state.get("progress")) == (video.status, str(video.progress)):
            return False
        self._ledger.record(key, video_changes(video))
        return True

    def _failed(self, key: str, error: ApiError) -> PollResult:
        state = self._ledger.states[key]
        self._logger.warning("poll %s (%s): %s", key, state["job_id"], error.message)
        return PollResult(state["status"], error=error)


@dataclass
class Cadence:
    """One job's current polling interval (it grows while nothing changes)."""

    interval: float


class PollSchedule:
    """When to poll each job: soon when it moves, less often while it does not.

    The provider's ``openai-poll-after-ms`` wins when it sends one. Otherwise the interval
    starts at ``base``, grows by :data:`GROWTH` per poll that saw nothing new up to
    ``max_interval``, holds while only the progress moves (a long job is expected to), goes
    back to ``base`` when the status changes, and is jittered so that jobs spread out.
    ``floor`` is the provider's refresh period (a profile's ``refresh_seconds``): its status
    cannot change faster, so no job is polled more often, whatever the hint says.
    """

    def __init__(
        self,
        base: float,
        rng: random.Random,
        *,
        max_interval: float = MAX_INTERVAL,
        floor: float = 0.0,
    ) -> None:
        if base <= 0:
            raise ValueError("the poll interval must be positive")
        self.floor = max(floor, 0.0)
        self.base = max(base, self.floor)
        self.max_interval = max(self.base, max_interval)
        self._rng = rng

    def cadence(self) -> Cadence:
        """A new job's cadence."""
        return Cadence(self.base)

    def first_delay(self, *, fresh: bool, spread: bool) -> float:
        """Seconds before a job's first poll.

        ``fresh``: just submitted, so nothing will have happened for about an interval.
        ``spread``: known jobs of a waiting run start anywhere within the first interval,
        so a thousand of them are not all polled in the same instant.
        """
        if fresh:
            return self._jittered(self.base)
        return self._rng.uniform(0.0, self.base) if spread else 0.0

    def next_delay(self, cadence: Cadence, result: PollResult) -> float:
        """Seconds until the next poll of a job after ``result``."""
        if result.poll_after is not None:
            return max(result.poll_after, self.floor)
        if not result.changed:
            return self.backoff(cadence)
        if result.status_changed:
            cadence.interval = self.base
        return self._jittered(cadence.interval)

    def backoff(self, cadence: Cadence) -> float:
        """Seconds until the next try after nothing changed (or a try failed): a longer wait."""
        cadence.interval = min(self.max_interval, cadence.interval * GROWTH)
        return self._jittered(cadence.interval)

    def _jittered(self, seconds: float) -> float:
        return max(self.floor, seconds * self._rng.uniform(1.0 - JITTER, 1.0 + JITTER))
