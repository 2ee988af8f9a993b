"""Retry policy: which failures are worth another try, and how long to wait before it.

Built from tenacity's small policies. Only what can succeed later is retried: what the
profile says made nothing (429, 502, 503, 52x …), what may have made a job (the caller
looks it up first), timeouts and connection errors (all :class:`RetryableError`). The
wait is exponential with full jitter, but never shorter than the provider's
``Retry-After``; a 429 also pauses every worker through the shared
:class:`~batchgen.provider.pacing.Pacer`.

A 429 costs nothing, so it is never a reason to give up on a row after a number of
tries: 429s do not count as attempts. A request gives up on them only once
``give_up_after`` seconds have passed since its first 429 (``--give-up-after``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from batchgen.errors import RateLimitedError, RetryableError
from batchgen.provider.pacing import Pacer

#: The default ``--give-up-after``: how long a row waits through 429s before giving up.
DEFAULT_GIVE_UP_AFTER = 3600.0


@dataclass(frozen=True)
class RetrySettings:
    """How persistent to be: attempts per request, the backoff's scale, and how long
    a request waits through 429s."""

    max_attempts: int = 6  # tries that were not answered 429
    backoff_base: float = 1.0  # seconds; the first retry waits up to this, doubling after
    backoff_max: float = 60.0
    max_retry_after: float = 300.0  # a provider asking for a day's wait is waited 5 minutes
    give_up_after: float = DEFAULT_GIVE_UP_AFTER  # seconds since a request's first 429


class wait_retry_after(wait_base):
    """Wait at least what the provider asked for in Retry-After, else ``fallback``."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        computed = self.fallback(retry_state)
        asked = retry_after(retry_state, self.cap)
        return computed if asked is None else max(asked, min(computed, 1.0))


class stop_when_spent(stop_base):
    """Stop after ``max_attempts`` tries that were not 429s, or once ``give_up_after``
    seconds have passed since the first 429 of this request.

    It keeps count across tries, so each request needs its own (see :func:`retrying`).
    """

    def __init__(
        self, max_attempts: int, give_up_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_attempts = max_attempts
        self.give_up_after = give_up_after
        self._clock = clock
        self.attempts = 0  # tries answered by something other than a 429
        self.first_429: float | None = None

    def __call__(self, retry_state: RetryCallState) -> bool:
        if isinstance(_error(retry_state), RateLimitedError):
            now = self._clock()
            if self.first_429 is None:
                self.first_429 = now
            return now - self.first_429 >= self.give_up_after
        self.attempts += 1
        return self.attempts >= self.max_attempts

    def held_for(self) -> float:
        """Seconds since this request's first 429 (0 without one)."""
        return 0.0 if self.first_429 is None else self._clock() - self.first_429


def retry_after(retry_state: RetryCallState, cap: float) -> float | None:
    """The wait the provider asked for with the last error, at most ``cap`` seconds."""
    asked = getattr(_error(retry_state), "retry_after", None)
    return None if asked is None else min(float(asked), cap)


def _error(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None else None


def retrying(
    settings: RetrySettings,
    pacer: Pacer,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """A tenacity controller for one request: ``async for attempt in retrying(...)``.

    ``sleep`` waits between tries; a caller may cut it short (a stop signal). When 429s
    outlast ``give_up_after``, the last one is raised saying for how long it was waited.
    """
    stop = stop_when_spent(settings.max_attempts, settings.give_up_after)

    def pause_everyone(retry_state: RetryCallState) -> None:
        if isinstance(_error(retry_state), RateLimitedError):
            asked = retry_after(retry_state, settings.max_retry_after)
            # without Retry-After, everyone waits this request's growing backoff
            grown = max(retry_state.upcoming_sleep, settings.backoff_base)
            pacer.pause(grown if asked is None else asked)

    def give_up(retry_state: RetryCallState) -> None:
        error = _error(retry_state)
        if isinstance(error, RateLimitedError) and stop.first_429 is not None:
            raise RateLimitedError(
                f"{error.message} (still refused after {stop.held_for():.0f} s of waiting "
                "through 429s: --give-up-after; the next run tries again)",
                status=error.status,
                code=error.code,
                retry_after=error.retry_after,
            ) from error
        if error is not None:
            raise error
        raise AssertionError("unreachable: only errors are retried")

    return AsyncRetrying(
        sleep=sleep,
        retry=retry_if_exception_type(RetryableError),
        wait=wait_retry_after(
            wait_random_exponential(multiplier=settings.backoff_base, max=settings.backoff_max),
            cap=settings.max_retry_after,
        ),
        stop=stop,
        before_sleep=pause_everyone,
        retry_error_callback=give_up,
        reraise=True,
    )
