"""When each job is worth checking: its expected completion, learned as the night goes.

A status check that finds a job still running is a request spent for nothing, so checks go
where completions are expected. What tells when a job will be done, best first:

1. this night's finished jobs (the provider's ``completed_at`` minus ``created_at``, else
   first seen complete minus sent): their median, so one slow job does not stall the rest;
2. the job's progress when last seen: 40 % after 24 s is done by about 60 s (an upper
   bound: providers round progress down, and a cached status is older than the look);
3. nothing known yet (no finished job, progress under :data:`TELLING_PROGRESS`): a few
   *probes* (the oldest jobs) are checked after ``base`` seconds, then each time
   :data:`GROWTH` times longer, and the others wait for what the probes learn
   (:attr:`Estimator.lessons` counts the lessons, so a waiting caller knows to look again).
   Where one request sees every job (a list page) there is no reason to hold back:
   ``probes=None`` makes every job a probe.

A provider that serves status from a cache refreshed every ``refresh_seconds`` shows a
completion up to that long after it happened, so that lag is added to every estimate, and
no estimate leaves a job unchecked for more than :attr:`Estimator.max_wait` (or a
typical job's duration) after it was last seen. Times are wall-clock seconds.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from dataclasses import dataclass

#: With nothing better to go on, each check of a job waits this much longer than the last.
GROWTH = 1.5
#: Durations remembered for the median: enough to be steady, few enough to follow a change.
REMEMBERED = 200
#: The longest a pending job goes unchecked, in first intervals (60 s at the default 5 s),
#: whatever the estimates say: they can be wrong.
MAX_WAIT_INTERVALS = 12
#: Progress below this (a cached 1 % after 15 s) says too little to plan on.
TELLING_PROGRESS = 10.0
#: How much the typical duration must move to count as a lesson worth acting on.
LESSON = 0.1


@dataclass
class _Sighting:
    """What is known of one pending job."""

    sent_at: float  # when its create went out (our clock)
    seen_at: float | None = None  # last status check that reached it
    progress: float = 0.0  # at seen_at
    checks: int = 0  # status checks that reached it


class Estimator:
    """Expected completion times of pending jobs, from finished jobs and their progress."""

    def __init__(
        self, base: float, refresh_seconds: float = 0.0, *, probes: int | None = None
    ) -> None:
        self.base = base
        self.max_wait = base * MAX_WAIT_INTERVALS
        self.lag = max(refresh_seconds, 0.0)
        self.probes = probes
        self.lessons = 0  # bumped when the typical duration first appears or moves
        self._taught: float | None = None  # the typical duration at the last lesson
        self._jobs: dict[str, _Sighting] = {}  # in the order their creates went out
        self._durations: deque[float] = deque(maxlen=REMEMBERED)

    def track(self, key: str, sent_at: float) -> None:
        """Start estimating ``key``, whose create was sent at ``sent_at``."""
        self._jobs.setdefault(key, _Sighting(sent_at))

    def forget(self, key: str) -> None:
        """``key`` is final: no more estimates for it."""
        self._jobs.pop(key, None)

    def seen(self, key: str, at: float, progress: float) -> None:
        """A status check at ``at`` found ``key`` still running at ``progress`` (0-100)."""
        job = self._jobs.get(key)
        if job is None:
            return
        job.checks += 1
        job.seen_at, job.progress = at, progress

    def finished(self, key: str, at: float, duration: float | None = None) -> None:
        """``key`` was seen complete at ``at``; ``duration`` is the provider's own, if known."""
        job = self._jobs.pop(key, None)
        if duration is None and job is not None:
            duration = at - job.sent_at - self.lag / 2  # seen late by half a refresh on average
        if duration is not None and duration > 0:
            self._durations.append(duration)
            self._learn()

    @property
    def typical_duration(self) -> float | None:
        """The median duration of this night's finished jobs, or None before the first."""
        return statistics.median(self._durations) if self._durations else None

    def due(self, key: str) -> float:
        """When ``key`` should be checked next: when it is expected to show as complete."""
        job = self._jobs[key]
        last = job.sent_at if job.seen_at is None else job.seen_at
        typical = self.typical_duration
        longest = last + max(self.max_wait, (typical or 0.0) + self.lag)
        guesses = self._guesses(job, typical)
        if typical is None and job.progress < TELLING_PROGRESS and self._is_probe(key):
            guesses.append(last + self.base * GROWTH**job.checks - self.lag)
        if not guesses:
            return longest  # not a probe: the probes' lessons will bring it forward
        # a guess the last look disproved (still running after it) no longer counts
        live = [g + self.lag for g in guesses if job.seen_at is None or g + self.lag > job.seen_at]
        if live:
            return min(min(live), longest)
        assert job.seen_at is not None
        # every estimate was short: look again soon
        return min(job.seen_at + max(self.lag, self.base), longest)

    def _guesses(self, job: _Sighting, typical: float | None) -> list[float]:
        """When the job should be complete by each thing known (the earliest is used:
        checking early costs one request, checking late holds the video back)."""
        guesses = []
        if typical is not None:
            guesses.append(job.sent_at + typical)
        if job.seen_at is not None and 0 < job.progress < 100:
            guesses.append(job.sent_at + (job.seen_at - job.sent_at) * 100.0 / job.progress)
        return guesses

    def _is_probe(self, key: str) -> bool:
        if self.probes is None:
            return True
        return key in itertools.islice(self._jobs, self.probes)

    def _learn(self) -> None:
        typical = self.typical_duration
        taught = self._taught
        if typical is not None and (taught is None or abs(typical - taught) > LESSON * taught):
            self._taught = typical
            self.lessons += 1

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)
