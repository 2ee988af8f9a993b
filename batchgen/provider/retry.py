"""Retry policy: which failures are worth another try, and how long to wait before it.

Built from tenacity's small policies. Only what can succeed later is retried: 429, 500,
502, 503, 504, timeouts and connection errors (all :class:`RetryableError`). The wait is
exponential with full jitter, but never shorter than the provider's ``Retry-After``; a
429 also pauses every worker through the shared :class:`~batchgen.pacing.Pacer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from batchgen.errors import RateLimitedError, RetryableError
from batchgen.provider.pacing import Pacer


@dataclass(frozen=True)
class RetrySettings:
    """How persistent to be: attempts per request and the backoff's scale."""

    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds; the first retry waits up to this, doubling after
    backoff_max: float = 60.0
    max_retry_after: float = 300.0  # a provider asking for a day's wait is waited 5 minutes


class wait_retry_after(wait_base):
    """Wait at least what the provider asked for in Retry-After, else ``fallback``."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        computed = self.fallback(retry_state)
        asked = retry_after(retry_state, self.cap)
        return computed if asked is None else max(asked, min(computed, 1.0))


def retry_after(retry_state: RetryCallState, cap: float) -> float | None:
    """The wait the provider asked for with the last error, at most ``cap`` seconds."""
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    asked = getattr(error, "retry_after", None)
    return None if asked is None else min(float(asked), cap)


def retrying(
    settings: RetrySettings,
    pacer: Pacer,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """A tenacity controller for one request: ``async for attempt in retrying(...)``.

    ``sleep`` waits between tries; a caller may cut it short (a stop signal).
    """

    def pause_everyone(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        if outcome is not None and isinstance(outcome.exception(), RateLimitedError):
            asked = retry_after(retry_state, settings.max_retry_after)
            pacer.pause(1.0 if asked is None else asked)

    return AsyncRetrying(
        sleep=sleep,
        retry=retry_if_exception_type(RetryableError),
        wait=wait_retry_after(
            wait_random_exponential(multiplier=settings.backoff_base, max=settings.backoff_max),
            cap=settings.max_retry_after,
        ),
        stop=stop_after_attempt(settings.max_attempts),
        before_sleep=pause_everyone,
        reraise=True,
    )
