"""Retry policy: which failures are worth another try, and how long to wait before it.

Built from tenacity's small policies. Only what can succeed later is retried: 429, 500,
502, 503, 504, timeouts and connection errors (all :class:`RetryableError`). The wait is
exponential with full jitter, but never shorter than the provider's ``Retry-After``; a
429 also pauses every worker through the shared :class:`~batchgen.pacing.Pacer`.
"""

from __future__ import annotations

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
from batchgen.pacing import Pacer


@dataclass(frozen=True)
class RetrySettings:
    """How persistent to be: attempts per request and the backoff's scale."""

    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds; the first retry waits up to this, doubling after
    backoff_max: float = 60.0


class wait_retry_after(wait_base):
    """Wait at least what the provider asked for in Retry-After, else ``fallback``."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        computed = self.fallback(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = getattr(error, "retry_after", None)
        return computed if asked is None else max(float(asked), min(computed, 1.0))


def retrying(settings: RetrySettings, pacer: Pacer) -> AsyncRetrying:
    """A tenacity controller for one request: ``async for attempt in retrying(...)``."""

    def pause_everyone(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimitedError):
            pacer.pause(error.retry_after if error.retry_after is not None else 1.0)

    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableError),
        wait=wait_retry_after(
            wait_random_exponential(multiplier=settings.backoff_base, max=settings.backoff_max)
        ),
        stop=stop_after_attempt(settings.max_attempts),
        before_sleep=pause_everyone,
        reraise=True,
    )
