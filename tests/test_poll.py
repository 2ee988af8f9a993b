"""Polling one job at a time against the simulated API on 127.0.0.1.

The harness it shares with the download and follow tests is in tests/helpers.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batchgen.errors import RejectedError
from batchgen.ledger import read_ledger
from batchgen.mock import Faults, MockConfig
from batchgen.profile_files import load_profile
from batchgen.provider.retry import RetrySettings
from batchgen.status import is_pending
from tests.helpers import FAST_RETRY, bounded, harness, lines_for, poller

RELAY_WORDS = {
    "queued": "pending",
    "in_progress": "processing",
    "completed": "succeeded",
    "failed": "failure",
}

# --------------------------------------------------------------------------- polling


async def test_a_line_is_appended_only_when_status_or_progress_moves(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(job_duration=100.0, expires_after=3600)) as h:
        await h.submit("c-01")
        p = poller(h)
        first = await bounded(p.poll("c-01"))
        assert (first.status, first.changed) == ("queued", False)  # unchanged: no line
        h.clock.advance(40)
        result = await bounded(p.poll("c-01"))
        assert (result.status, result.changed, result.status_changed) == ("in_progress", True, True)
        h.clock.advance(10)
        assert (await bounded(p.poll("c-01"))).status_changed is False  # 50 %
        await bounded(p.poll("c-01"))  # still 50 %: no line
        h.clock.advance(50)
        assert (await bounded(p.poll("c-01"))).status == "completed"
        statuses = [(r["status"], r["progress"]) for r in lines_for(h.results, "c-01")]
        assert statuses == [
            ("queued", "0"),
            ("in_progress", "40"),
            ("in_progress", "50"),
            ("completed", "100"),
        ]
        assert int(h.ledger.states["c-01"]["expires_at"]) == int(h.clock.now) + 3600
        assert h.requests("retrieve") == 5


async def test_a_moderation_failure_is_final_with_the_providers_code(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.submit("bad", "a [fail] prompt")
        result = await bounded(poller(h).poll("bad"))
        state = read_ledger(h.results)["bad"]
        assert result.status == state["status"] == "failed"
        assert state["error_code"] == "moderation_blocked"
        assert "moderation" in state["error_message"]
        assert not is_pending(state)


async def test_a_job_the_provider_forgot_is_lost(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job_id = await h.submit("gone")
        h.mock.state.delete(job_id)
        result = await bounded(poller(h).poll("gone"))
        state = h.ledger.states["gone"]
        assert (result.status, state["status"], state["error_code"]) == (
            "lost",
            "lost",
            "video_not_found",
        )


async def test_relay_status_words_are_mapped_and_unknown_ones_stay_pending(
    tmp_path: Path,
) -> None:
    config = MockConfig(profile=load_profile("relay"), status_words=RELAY_WORDS, job_duration=10.0)
    async with harness(tmp_path, config, profile="relay") as h:
        await h.submit("r")
        h.clock.advance(5)
        assert (await bounded(poller(h).poll("r"))).status == "in_progress"  # "processing"
        config.status_words = {**RELAY_WORDS, "in_progress": "rendering"}
        h.clock.advance(1)
        assert (await bounded(poller(h).poll("r"))).status == "rendering"  # kept verbatim
        assert is_pending(h.ledger.states["r"])
        h.clock.advance(10)
        assert (await bounded(poller(h).poll("r"))).status == "completed"  # "succeeded"


async def test_retryable_answers_are_retried_like_creates(tmp_path: Path) -> None:
    faults = Faults(seed=3, error_500=0.4, html_502=0.3, endpoints=frozenset({"retrieve"}))
    async with harness(tmp_path, MockConfig(faults=faults)) as h:
        for n in range(6):
            await h.submit(f"k{n}")
        p = poller(h, RetrySettings(max_attempts=20, backoff_base=0.001, backoff_max=0.01))
        results = await bounded(asyncio.gather(*(p.poll(f"k{n}") for n in range(6))))
        assert {r.status for r in results} == {"completed"}
        assert h.requests("retrieve") > 6


async def test_giving_up_keeps_the_last_status_and_reports_the_error(tmp_path: Path) -> None:
    faults = Faults(error_503=1.0, endpoints=frozenset({"retrieve"}))
    async with harness(tmp_path, MockConfig(faults=faults)) as h:
        await h.submit("k")
        result = await bounded(poller(h).poll("k"))
        assert result.status == "queued" and result.error is not None
        assert result.error.status == 503
        assert h.requests("retrieve") == FAST_RETRY.max_attempts
        assert len(lines_for(h.results, "k")) == 1  # nothing recorded for a failed poll


async def test_a_refused_key_stops_polling_altogether(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.submit("k")
        h.client._auth = {}  # the key was revoked overnight
        with pytest.raises(RejectedError) as caught:
            await bounded(poller(h).poll("k"))
        assert caught.value.status == 401


async def test_the_poll_after_header_comes_back_with_the_job(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(job_duration=10.0, poll_after_ms=2500)) as h:
        await h.submit("k")
        result = await bounded(poller(h).poll("k"))
        assert result.poll_after == 2.5
        h.clock.advance(10)
        assert (await bounded(poller(h).poll("k"))).poll_after is None  # final: no hint
