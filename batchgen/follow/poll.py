"""Polling: one look at a job, recorded only when it changed.

A poll goes through the same throttle (concurrency cap, even pacing, shared 429 pause)
and retry policy as a create. The ledger gets a line only when the job's status or
progress moved, so a night of polling a slow job does not bury its history. "No such
job" as the profile says it looks (a 404, new-api's 400 ``task_not_exist``) means the
provider no longer knows the job: it is ``lost``, which is final. A 429 is waited through
(within ``--give-up-after``), never counted as a failed try.
"""

from __future__ import annotations

import logging
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


def record_video(ledger: Ledger, key: str, video: Video) -> bool:
    """Record ``video``'s state when its status or progress differs from the ledger's."""
    state = ledger.states[key]
    if (state.get("status"), state.get("progress")) == (video.status, str(video.progress)):
        return False
    ledger.record(key, video_changes(video))
    return True


@dataclass(frozen=True)
class PollResult:
    """What one poll found: the job's status now, and whether to expect a change soon."""

    status: str
    changed: bool = False  # status or progress moved (a line was recorded)
    status_changed: bool = False
    poll_after: float | None = None  # seconds the provider asked us to wait
    error: ApiError | None = None  # the poll failed; ``status`` is the last known one
    video: Video | None = None  # what the provider answered, when it answered


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
        changed = record_video(self._ledger, key, video)
        return PollResult(video.status, changed, status_changed, polled.poll_after, video=video)

    def _failed(self, key: str, error: ApiError) -> PollResult:
        state = self._ledger.states[key]
        self._logger.warning("poll %s (%s): %s", key, state["job_id"], error.message)
        return PollResult(state["status"], error=error)
