"""The simulated API can spread job durations (``job_duration_min``), seeded: each job
finishes within the range, and the same seed finishes the same jobs at the same moments."""

from __future__ import annotations

import aiohttp

from batchgen.mock import Faults, MockConfig, running_mock
from tests.helpers import FakeClock, call

AUTH = {"Authorization": "Bearer sk-test-key"}
JOBS = 12
START = 1_000_000.0


async def _statuses_after(seed: int, seconds: tuple[float, ...]) -> list[dict[str, str]]:
    """Create JOBS jobs at START with durations in [10, 50] s; each job's status after each
    of ``seconds``, by id."""
    config = MockConfig(job_duration=50.0, job_duration_min=10.0, faults=Faults(seed=seed))
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        running_mock(config) as mock,
        aiohttp.ClientSession(headers=AUTH, timeout=timeout) as session,
    ):
        mock.state.clock = clock = FakeClock(START)
        ids = []
        for _ in range(JOBS):
            form = aiohttp.FormData({"prompt": "a calm sea"}, default_to_multipart=True)
            status, job, _ = await call(session, "POST", f"{mock.base_url}/videos", data=form)
            assert status == 200
            ids.append(job["id"])
        seen = []
        for moment in seconds:
            clock.now = START + moment
            answers = [await call(session, "GET", f"{mock.base_url}/videos/{i}") for i in ids]
            seen.append({i: body["status"] for i, (_, body, _) in zip(ids, answers, strict=True)})
        return seen


async def test_spread_durations_stay_in_range_differ_and_repeat_with_the_seed() -> None:
    moments = (9.9, 30.0, 50.0)
    early, middle, late = await _statuses_after(7, moments)
    assert set(early.values()) <= {"queued", "in_progress"}  # none is shorter than 10 s
    assert set(late.values()) == {"completed"}  # none is longer than 50 s
    done_midway = {job for job, status in middle.items() if status == "completed"}
    assert 0 < len(done_midway) < JOBS  # durations really differ
    assert await _statuses_after(7, moments) == [early, middle, late]  # reproducible
