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

Polled one by one (``probes`` set), a look that finds a job still running is a request
spent for nothing, and the median sends half the jobs' first looks too early. So once
:data:`SURE_KNOWN` durations are known, a job's first look waits for
:attr:`Estimator.sure_duration`, the duration by which :data:`SURE_QUANTILE` of jobs are
done; a job whose own progress is known is looked at when that progress says. Such a look
is :meth:`Estimator.sure`: expected to find the job complete, so a caller may fetch the
video straight away. Sure looks teach nothing of the durations (the jobs they find
running are the slowest, so learning from them would push the quantile ever up): the
durations come from *samples*, the probes and then one job in :data:`SAMPLE_EVERY`,
looked at the ordinary way. A sure look that found the job running
(:meth:`Estimator.doubt`) makes the next look an ordinary one, which reads its progress.
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
#: Durations known (finished or projected) before a first look waits for the sure one.
SURE_KNOWN = 10
#: The share of jobs done by :attr:`Estimator.sure_duration`; the rest are looked at
#: again when their progress says (a look too early costs a request, one too late only
#: holds that video back by the difference).
SURE_QUANTILE = 0.95
#: Allowance over that quantile of the durations known, for the slower jobs few samples
#: have not shown.
SURE_MARGIN = 0.05
#: After the probes, one job in this many is a sample: looked at the ordinary way, so
#: that the durations known follow the night (a request or two more per sample).
SAMPLE_EVERY = 20


@dataclass
class _Sighting:
    """What is known of one pending job."""

    sent_at: float  # when its create went out (our clock)
    seen_at: float | None = None  # last status check that reached it
    progress: float = 0.0  # at seen_at
    checks: int = 0  # status checks that reached it
    sample: bool = False  # looked at the ordinary way, to learn how long jobs take
    doubted: bool = False  # a sure look found it running: the next look reads progress
    looked_sure: bool = False  # a sure look reached it: its duration is no sample

    def projected(self, staleness: float = 0.0) -> float | None:
        """Its duration as its progress says, when that says enough: an upper bound, as
        progress is rounded down and a cached status is older than the look (by
        ``staleness`` seconds, taken off, for an estimate rather than a bound)."""
        if self.seen_at is None or not TELLING_PROGRESS <= self.progress < 100:
            return None
        return max(self.seen_at - staleness - self.sent_at, 0.0) * 100.0 / self.progress


class Estimator:
    """Expected completion times of pending jobs, from finished jobs and their progress."""

    def __init__(
        self,
        base: float,
        refresh_seconds: float = 0.0,
        *,
        probes: int | None = None,
        sure: bool = True,
    ) -> None:
        self.base = base
        self.max_wait = base * MAX_WAIT_INTERVALS
        self.lag = max(refresh_seconds, 0.0)
        self.probes = probes
        self.sure_looks = sure and probes is not None  # a list page sees every job anyway
        self.lessons = 0  # bumped when the typical duration first appears or moves
        self._taught: float | None = None  # the typical duration at the last lesson
        self._jobs: dict[str, _Sighting] = {}  # in the order their creates went out
        self._durations: deque[float] = deque(maxlen=REMEMBERED)
        # the latest sampled jobs' durations (finished, or projected from progress)
        self._known: dict[str, float] = {}
        self._sure: float | None = None  # worked out from _known
        self._tracked = 0
        self._taught_sure: float | None = None  # the sure duration at the last lesson

    def track(self, key: str, sent_at: float) -> None:
        """Start estimating ``key``, whose create was sent at ``sent_at``."""
        if key in self._jobs:
            return
        self._tracked += 1
        probes = self.probes or 0
        sample = self._tracked <= probes or (self._tracked - probes) % SAMPLE_EVERY == 0
        self._jobs[key] = _Sighting(sent_at, sample=sample)

    def forget(self, key: str) -> None:
        """``key`` is final: no more estimates for it."""
        self._jobs.pop(key, None)

    def seen(self, key: str, at: float, progress: float) -> None:
        """A status check at ``at`` found ``key`` still running at ``progress`` (0-100)."""
        job = self._jobs.get(key)
        if job is None:
            return
        teaches = self._teaches(key, job)
        job.checks += 1
        job.seen_at, job.progress = at, progress
        projected = job.projected(self.lag / 2)  # cached half a refresh ago, on average
        if projected is not None:
            job.doubted = False
            if teaches:
                self._remember(key, projected)

    def doubt(self, key: str, at: float) -> None:
        """A sure look at ``at`` found ``key`` not complete (and told nothing more): the
        next look is an ordinary one, soon, to read its progress."""
        job = self._jobs.get(key)
        if job is not None:
            job.checks += 1
            job.seen_at, job.doubted, job.looked_sure = at, True, True

    def finished(self, key: str, at: float, duration: float | None = None) -> None:
        """``key`` was seen complete at ``at``; ``duration`` is the provider's own, if known."""
        job = self._jobs.get(key)
        teaches = job is not None and self._teaches(key, job)
        self.forget(key)
        if duration is None and job is not None:
            duration = at - job.sent_at - self.lag / 2  # seen late by half a refresh on average
        if duration is not None and duration > 0:
            self._durations.append(duration)
            if teaches:
                self._remember(key, duration)
            self._learn()

    def _teaches(self, key: str, job: _Sighting) -> bool:
        """Whether what a look now finds of ``key`` is a sample of the night's durations:
        not once a sure look has reached it (those still running are the slowest)."""
        job.looked_sure = job.looked_sure or self.sure(key)
        return not job.looked_sure

    def _remember(self, key: str, duration: float) -> None:
        """Know ``key``'s duration (a later word on the same job replaces the earlier),
        and work out the sure duration again."""
        self._known.pop(key, None)  # re-inserted last: the oldest knowledge goes first
        self._known[key] = duration
        while len(self._known) > REMEMBERED:
            del self._known[next(iter(self._known))]
        if len(self._known) >= SURE_KNOWN:
            ordered = sorted(self._known.values())
            at = min(len(ordered) - 1, int(SURE_QUANTILE * len(ordered)))
            self._sure = ordered[at] * (1.0 + SURE_MARGIN)
            self._learn()

    @property
    def typical_duration(self) -> float | None:
        """The median duration of this night's finished jobs, or None before the first."""
        return statistics.median(self._durations) if self._durations else None

    @property
    def sure_duration(self) -> float | None:
        """The duration by which :data:`SURE_QUANTILE` of jobs are done, once
        :data:`SURE_KNOWN` durations are known; None before (or where jobs are listed)."""
        return self._sure

    def sure(self, key: str) -> bool:
        """Whether ``key``'s next look (at :meth:`due`) is expected to find it complete:
        polled one by one, from its own progress or the sure duration, and not doubted."""
        job = self._jobs.get(key)
        if job is None or job.sample or job.doubted or not self.sure_looks:
            return False
        return job.projected() is not None or self.sure_duration is not None

    def due(self, key: str) -> float:
        """When ``key`` should be checked next: when it is expected to show as complete."""
        job = self._jobs[key]
        last = job.sent_at if job.seen_at is None else job.seen_at
        if self.sure(key):
            return self._sure_due(job, last)
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

    def _sure_due(self, job: _Sighting, last: float) -> float:
        """A sure look: when the job's own progress, else the sure duration, says it is
        done, shown by the provider's next refresh; never sooner than the next refresh
        after the last look (a cached status cannot have changed before)."""
        projected, sure = job.projected(), self.sure_duration  # a bound, for this job
        duration = projected if projected is not None else sure
        assert duration is not None
        due = max(job.sent_at + duration, last) + self.lag
        # a projection from a slow start can be far off: no later than a sure job's wait
        return min(due, last + max(self.max_wait, (sure or 0.0) + self.lag))

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
        """A lesson when the typical or the sure duration first appears or moves."""
        typical, sure = self.typical_duration, self._sure
        if _moved(typical, self._taught) or _moved(sure, self._taught_sure):
            self._taught, self._taught_sure = typical, sure
            self.lessons += 1

    def __contains__(self, key: object) -> bool:
        return key in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)


def _moved(now: float | None, taught: float | None) -> bool:
    """Whether a duration first appeared, or moved by more than :data:`LESSON`."""
    return now is not None and (taught is None or abs(now - taught) > LESSON * taught)
