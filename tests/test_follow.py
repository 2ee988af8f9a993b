"""follow_jobs: polling every job to the end and downloading it at once, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from batchgen.errors import UsageError
from batchgen.follow.estimate import MAX_WAIT_INTERVALS
from batchgen.follow.follower import FollowSettings, Timing, follow_jobs
from batchgen.follow.tally import FollowTally
from batchgen.jobs import Job
from batchgen.ledger import Record
from batchgen.mock import MockConfig
from batchgen.plan import SEND, Step
from batchgen.profile import Profile
from batchgen.profile_files import load_profile
from batchgen.progress import Progress
from batchgen.provider.pacing import Pacer, Throttle
from batchgen.submit import SubmitSettings, Submitter
from tests.helpers import FAST_RETRY, LOG, Harness, bounded, harness

QUICK = FollowSettings(poll_rpm=None, retry=FAST_RETRY, poll_interval=0.01)


def settings(h: Harness, **changes: Any) -> FollowSettings:
    """Quick settings, downloading into ``h.folder`` unless told otherwise."""
    return dataclasses.replace(QUICK, **{"download_dir": h.folder, **changes})


async def follow(
    h: Harness,
    config: FollowSettings,
    *,
    stop: asyncio.Event | None = None,
    incoming: asyncio.Queue[str | None] | None = None,
    timing: Timing | None = None,
) -> FollowTally:
    run = follow_jobs(
        h.client,
        h.ledger,
        config,
        stop or asyncio.Event(),
        incoming=incoming,
        logger=LOG,
        timing=timing or Timing(rng=random.Random(0)),
    )
    return await bounded(run)


def statuses(h: Harness) -> dict[str, str]:
    return {key: state["status"] for key, state in h.ledger.states.items()}


def when_recorded(h: Harness, key: str, status: str) -> asyncio.Event:
    """An event set when the ledger records ``status`` for ``key`` (no polling, no sleeps)."""
    reached = asyncio.Event()
    record = h.ledger.record

    def spy(k: str, changes: Mapping[str, object], *, durable: bool = False) -> Record:
        state = record(k, changes, durable=durable)
        if (k, state["status"]) == (key, status):
            reached.set()
        return state

    h.ledger.record = spy  # type: ignore[method-assign, assignment]
    return reached


async def test_one_pass_takes_every_job_to_its_final_state(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.submit("ok")
        await h.submit("bad", "a [fail] prompt")
        gone = await h.submit("gone")
        h.mock.state.delete(gone)
        tally = await follow(h, settings(h, download_dir=None))
        assert statuses(h) == {"ok": "completed", "bad": "failed", "gone": "lost"}
        assert tally.statuses == Counter(completed=1, failed=1, lost=1)
        assert (tally.pending, tally.files, tally.exit_code) == (0, 0, 1)
        looks = h.requests("retrieve") + h.requests("list")
        assert looks == 2  # one list page for all three, a poll for the one it lacks
        again = await follow(h, settings(h, download_dir=None))
        assert again.followed == 0  # final: never looked at again
        assert h.requests("retrieve") + h.requests("list") == looks


async def test_wait_downloads_every_completed_job(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(video_bytes=50_000)) as h:
        for n in range(5):
            await h.submit(f"c-{n}")
        await h.submit("bad", "[fail]")
        tally = await follow(h, settings(h, wait=True, timeout=30))
        assert tally.statuses == Counter(downloaded=5, failed=1)
        assert (tally.files, tally.bytes, tally.pending, tally.timed_out) == (5, 250_000, 0, False)
        assert sorted(p.name for p in h.folder.iterdir()) == [f"c-{n}.mp4" for n in range(5)]
        assert tally.exit_code == 1  # the failed one needs attention
        rerun = await follow(h, settings(h, wait=True))
        assert rerun.followed == 0 and h.requests("content") == 5


async def test_wait_gives_up_at_the_timeout_with_jobs_pending(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(job_duration=600.0)) as h:
        await h.submit("slow")
        tally = await follow(h, settings(h, wait=True, timeout=0.3, poll_interval=0.05))
        assert tally.timed_out and tally.pending == 1 and not tally.statuses
        assert tally.exit_code == 4
        assert h.requests("list") >= 1 and statuses(h) == {"slow": "queued"}


async def test_a_stop_signal_ends_the_wait_and_starts_nothing_new(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(job_duration=600.0)) as h:
        await h.submit("slow")
        stop = asyncio.Event()
        stop.set()
        tally = await follow(h, settings(h, wait=True, poll_interval=5.0), stop=stop)
        assert tally.interrupted and tally.pending == 1 and not tally.timed_out
        assert h.requests("retrieve") == 0


def not_listing() -> Profile:
    """OpenAI's wire format from a provider that cannot list: every job is polled alone."""
    return dataclasses.replace(load_profile("openai"), can_list=False)


async def test_no_poll_comes_sooner_than_the_providers_poll_after_header_asks(
    tmp_path: Path,
) -> None:
    config = MockConfig(job_duration=2.0, poll_after_ms=3000, listing=False)
    async with harness(tmp_path, config, profile=not_listing()) as h:
        await h.submit("k")
        slept: list[float] = []

        async def sleep(seconds: float) -> None:  # virtual time: the mock's clock moves
            slept.append(seconds)
            h.clock.advance(seconds)
            await asyncio.sleep(0)

        timing = Timing(clock=h.clock, sleep=sleep, wall=h.clock, rng=random.Random(4))
        created = h.clock()
        tally = await follow(h, settings(h, wait=True, poll_interval=1.0), timing=timing)
        assert tally.statuses == Counter(downloaded=1)
        first, second = h.mock.state.retrieved_at[h.ledger.states["k"]["job_id"]]
        assert abs(first - created - 1.0) < 0.5  # nothing known yet: one interval after
        # at 50 % after 1 s it should be done at 2 s, but the provider asked for 3 s
        assert second - first == pytest.approx(3.0)


async def test_without_the_header_polls_back_off(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(job_duration=3600.0)) as h:
        await h.submit("k")
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            h.clock.advance(seconds)
            await asyncio.sleep(0)

        timing = Timing(clock=h.clock, sleep=sleep, wall=h.clock, rng=random.Random(5))
        await follow(h, settings(h, wait=True, poll_interval=5.0), timing=timing)
        assert statuses(h) == {"k": "downloaded"}
        looks = h.requests("list") + h.requests("retrieve")
        longest = 5.0 * MAX_WAIT_INTERVALS
        assert looks <= 2 * 3600 / longest  # an hour's job: not 3,600 looks a second apart
        assert max(slept) == pytest.approx(longest)  # and never out of sight for long


async def test_a_relays_not_ready_content_is_retried_until_it_is(tmp_path: Path) -> None:
    async with harness(tmp_path, MockConfig(content_delay=3.0, not_ready_status=400)) as h:
        await h.submit("k")

        async def sleep(seconds: float) -> None:
            h.clock.advance(seconds)
            await asyncio.sleep(0)

        timing = Timing(clock=h.clock, sleep=sleep, wall=h.clock, rng=random.Random(6))
        tally = await follow(h, settings(h, wait=True, poll_interval=1.0), timing=timing)
        assert tally.statuses == Counter(downloaded=1) and tally.errors == 0
        assert h.requests("content") > 1


async def test_jobs_handed_over_while_submitting_are_downloaded_as_they_complete(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, MockConfig(job_duration=100.0)) as h:
        await h.submit("early")
        h.clock.advance(100)  # "early" is complete; "late" will take another 100 s
        await h.submit("late")
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        early_downloaded = when_recorded(h, "early", "downloaded")
        ceiling, lifted = [h.clock() + 50], asyncio.Event()

        async def sleep(seconds: float) -> None:  # virtual time, held below the ceiling
            target = h.clock() + seconds
            while target > ceiling[0]:
                await lifted.wait()
            h.clock.advance(max(target - h.clock(), 0.0))
            await asyncio.sleep(0)

        timing = Timing(clock=h.clock, sleep=sleep, wall=h.clock, rng=random.Random(7))
        task = asyncio.create_task(follow(h, settings(h, wait=True), incoming=queue, timing=timing))
        queue.put_nowait("early")
        queue.put_nowait("late")
        queue.put_nowait("never-submitted")  # not in the ledger: ignored, not a crash
        await bounded(early_downloaded.wait())
        assert h.ledger.states["late"]["status"] in ("queued", "in_progress")
        assert not task.done()  # the submitter has not said it is done
        h.clock.advance(100)
        ceiling[0] = float("inf")
        lifted.set()
        queue.put_nowait(None)
        tally = await bounded(task)
        assert tally.statuses == Counter(downloaded=2)


async def test_following_a_running_submitter(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        fields = {"model": "sora-2", "seconds": "4", "size": "720x1280"}
        jobs = [Job(f"j{n}", n + 2, {**fields, "prompt": f"scene {n}"}) for n in range(8)]
        steps = [Step(job, SEND, "new row") for job in jobs]
        stop = asyncio.Event()
        progress = Progress(len(steps), "submit", interactive=False, logger=LOG)
        submitter = Submitter(
            h.client,
            h.ledger,
            Throttle(Pacer(None), 2),
            SubmitSettings(retry=FAST_RETRY),
            progress,
            stop,
            on_submitted=queue.put_nowait,
        )

        async def submit_all() -> None:
            await submitter.run(steps)
            queue.put_nowait(None)

        following = follow(h, settings(h, wait=True, timeout=30), stop=stop, incoming=queue)
        tally, _ = await bounded(asyncio.gather(following, submit_all()))
        assert tally.statuses == Counter(downloaded=8) and tally.files == 8
        assert h.mock.state.jobs_created == 8 and h.requests("content") == 8


async def test_progress_lines_report_final_jobs_over_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness(tmp_path) as h:
        for n in range(3):
            await h.submit(f"k{n}")
        with caplog.at_level(logging.INFO, logger=LOG.name):
            await follow(h, settings(h, wait=True))
        assert "poll: 3/3 (100%) downloaded 3" in caplog.text


async def test_a_bad_name_template_is_refused_before_any_request(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.submit("k")
        with pytest.raises(UsageError, match="unknown field"):
            await follow(h, settings(h, name_template="{campain}"))
        assert h.requests("retrieve") == 0
