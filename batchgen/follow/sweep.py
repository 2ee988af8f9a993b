"""Status by list pages: where the provider lists its jobs, one request sees up to 100.

Polling each job costs a request per job per look; a sweep reads ``GET /videos`` newest
first, a page of 100 at a time, until every job being followed has been seen (or the
pages have gone past the oldest of them), and records what changed, as a poll would.
A sweep is worth its pages only when enough jobs are expected to have finished, so the
next one waits until about :data:`HARVEST_PER_REQUEST` completions per page are due
(:mod:`batchgen.follow.estimate`), or all that are left, never sooner than the provider's
refresh period (or a fifth of the first interval) and never later than the estimator's
longest wait. A job the pages do not show (older than the list
keeps, deleted, or another key's) is handed back to be polled on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from batchgen.errors import ApiError, RejectedError
from batchgen.follow.estimate import Estimator
from batchgen.follow.poll import AUTH_FAILURES, paced, record_video
from batchgen.ledger import Ledger
from batchgen.provider.client import Video, VideoClient, VideoPage
from batchgen.provider.pacing import Throttle
from batchgen.provider.retry import RetrySettings
from batchgen.reconcile import CLOCK_SKEW_SECONDS
from batchgen.status import FINAL

#: Completions a sweep should find per page it reads: status costs ~1/20 request a video.
HARVEST_PER_REQUEST = 20
#: The shortest gap between two sweeps, in first intervals (1 s at the default 5 s).
MIN_GAP_INTERVALS = 0.2
#: A list may show a job a little after its create answered: until then a miss means nothing.
LIST_LAG_SECONDS = 10.0


@dataclass
class SweepResult:
    """What one sweep found: jobs now final, jobs to poll alone, and what it cost."""

    finished: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    pages: int = 0
    error: ApiError | None = None


class Sweeper:
    """Follows many pending jobs of one ledger by reading the provider's list."""

    def __init__(
        self,
        client: VideoClient,
        ledger: Ledger,
        throttle: Throttle,
        retry: RetrySettings,
        estimator: Estimator,
        *,
        wall: Callable[[], float],
        floor: float,
        logger: logging.Logger,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._throttle = throttle
        self._retry = retry
        self._estimator = estimator
        self._wall = wall
        self.floor = max(floor, estimator.base * MIN_GAP_INTERVALS)
        self._logger = logger
        self._keys: dict[str, str] = {}  # job id -> key, of the jobs still followed
        self._sent: dict[str, float] = {}  # key -> when its create went out
        self._last_sweep: float | None = None
        self._last_pages = 1

    def add(self, key: str, sent_at: float) -> None:
        """Follow ``key`` (pending, with a job id) from the next sweep on."""
        self._keys[self._ledger.states[key]["job_id"]] = key
        self._sent[key] = sent_at

    def __len__(self) -> int:
        return len(self._keys)

    def next_at(self) -> float:
        """When the next sweep is worth its pages (wall-clock seconds)."""
        dues = sorted(self._estimator.due(key) for key in self._keys.values())
        need = min(len(dues), HARVEST_PER_REQUEST * self._last_pages)
        at = dues[need - 1] if dues else self._wall()
        if self._last_sweep is not None:
            latest = self._last_sweep + self._estimator.max_wait
            at = min(max(at, self._last_sweep + self.floor), latest)
        return at

    async def sweep(self, *, last: bool = False) -> SweepResult:
        """Read pages until every followed job was seen; record and sort out what changed.

        A job not seen is handed back (:attr:`SweepResult.missing`) once the list should
        show it, or at once when this is the ``last`` sweep (a single pass).

        Raises :class:`RejectedError` for 401/403 (the key is refused: nothing can work);
        other failures come back in :attr:`SweepResult.error`.
        """
        result = SweepResult()
        unseen = set(self._keys)
        oldest = min(self._sent.values(), default=self._wall()) - CLOCK_SKEW_SECONDS
        after: str | None = None
        try:
            while unseen:
                page = await self._page(after)
                result.pages += 1
                self._take(page, unseen, result)
                if not page.has_more or not page.videos or _older(page, oldest):
                    break
                after = page.last_id
        except RejectedError as exc:
            if exc.status in AUTH_FAILURES:
                raise
            result.error = exc
        except ApiError as exc:
            result.error = exc
        self._last_sweep, self._last_pages = self._wall(), max(result.pages, 1)
        if result.error is None:
            result.missing = self._missed(unseen, everything=last)
        else:
            self._logger.warning("status sweep: %s", result.error.message)
        return result

    async def _page(self, after: str | None) -> VideoPage:
        return await paced(
            self._throttle, self._retry, lambda: self._client.list_videos(after=after)
        )

    def _take(self, page: VideoPage, unseen: set[str], result: SweepResult) -> None:
        now = self._wall()
        for video in page.videos:
            key = self._keys.get(video.id)
            if key is None:
                continue  # another row's, another night's, another user's
            unseen.discard(video.id)
            record_video(self._ledger, key, video)
            if video.status in FINAL:
                self._estimator.finished(key, now, provider_duration(video))
                self._drop(key)
                result.finished.append(key)
            else:
                self._estimator.seen(key, now, float(video.progress))

    def _missed(self, unseen: set[str], *, everything: bool) -> list[str]:
        """Keys the pages did not show though they should have: to be polled on their own."""
        settled = float("inf") if everything else self._wall() - LIST_LAG_SECONDS
        alone = [self._keys[i] for i in unseen if self._sent[self._keys[i]] <= settled]
        for key in alone:
            self._drop(key)
        return alone

    def _drop(self, key: str) -> None:
        self._keys.pop(self._ledger.states[key]["job_id"], None)
        self._sent.pop(key, None)


def _older(page: VideoPage, than: float) -> bool:
    """Whether ``page`` already reaches before every followed job was created."""
    oldest = page.videos[-1].created_at
    return oldest is not None and oldest < than


def provider_duration(video: Video) -> float | None:
    """How long the provider says the job took, when it says."""
    if video.completed_at is None or video.created_at is None:
        return None
    return float(video.completed_at - video.created_at)
