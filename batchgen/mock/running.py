"""The running-job cap of app relays: a key may have ``max_running`` jobs in progress at
once, and a create beyond it is answered 429 "too many running tasks" (nothing is made,
nothing billed); and the peak of jobs running at once, for tests to assert on.

A job is running from its create until its lifecycle (:func:`~batchgen.mock.lifecycle.advance`)
says it is final at the provider's real clock, whatever a lagging retrieve still shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from batchgen.mock.config import MockConfig
from batchgen.mock.failures import rate_limited
from batchgen.mock.lifecycle import advance
from batchgen.mock.state import CONFIG_KEY, STATE_KEY, MockState

#: The app relays' own words (sora2api issues #39, #46), when the flavour has no others.
CAP_MESSAGE = "too many running tasks"
FINAL_AT_PROVIDER = frozenset({"completed", "failed"})


def check_running_cap(app: web.Application) -> None:
    """Refuse a create (429) when the key already has ``max_running`` jobs running."""
    config, state = app[CONFIG_KEY], app[STATE_KEY]
    if config.max_running is None:
        return
    if running_at(state.jobs.values(), config, state.clock()) < config.max_running:
        return
    raise rate_limited(
        config.rate_limit_message or CAP_MESSAGE,
        retry_after="1",
        retry_after_ms=1000,
        headers=config.retry_after,
    )


def running_at(jobs: Iterable[dict[str, Any]], config: MockConfig, now: float) -> int:
    """How many of ``jobs`` are running at ``now`` (created by then, not final yet)."""
    return sum(1 for job in jobs if _running(job, config, now))


def peak_running(state: MockState, config: MockConfig) -> int:
    """The most jobs that were running at once: counted at each create, which is when the
    number can rise (jobs only ever leave the running set between creates)."""
    jobs = list(state.jobs.values())
    starts = sorted(float(job["_started"]) for job in jobs)
    return max((running_at(jobs, config, start) for start in starts), default=0)


def _running(job: dict[str, Any], config: MockConfig, now: float) -> bool:
    started = float(job["_started"])
    if now < started:
        return False
    finished = job["_finished"]
    if finished is not None:  # already seen to end: running only before that moment
        return now < float(finished)
    # where the lifecycle would have the job at ``now``, leaving the job itself untouched
    # (a lagging provider's retrieve shows it only at its next refresh tick)
    seen = dict(job)
    advance(seen, config, now)
    return seen["status"] not in FINAL_AT_PROVIDER
