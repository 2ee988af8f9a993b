"""The two clients compared: batchgen's real run path, and the script a user would write
instead with the official ``openai`` SDK. Both run in this process (the simulated API is
in another), so :func:`time.process_time` is the client's own CPU time.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from batchgen.provider.resolve import ProviderOptions
from batchgen.provider.retry import RetrySettings
from batchgen.runner import RunRequest, run
from batchgen.submit import SubmitSettings
from benchmarks.data import prompt_for
from benchmarks.server import API_KEY

UNPACED_RPM = 1e9  # what a user passes for "no rate limit": --rpm 1000000000
SIZE: Literal["720x1280"] = "720x1280"  # IMAGE_SIZE as the SDK types it


@dataclass(frozen=True)
class Submission:
    """How long the submitting phase took, the client's CPU in it, and what it made."""

    jobs: int
    wall_seconds: float
    cpu_seconds: float
    setup_seconds: float = 0.0  # batchgen: loading and validating before the first send

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.wall_seconds

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.cpu_seconds / self.jobs


class _PhaseMark(logging.Handler):
    """Notes the clock when the runner logs that it starts sending (validation is done)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.wall: float | None = None
        self.cpu: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.wall is None and record.getMessage().startswith("sending "):
            self.wall, self.cpu = time.perf_counter(), time.process_time()


def run_batchgen(
    manifest: Path, base_url: str, concurrency: int, rpm: float = UNPACED_RPM
) -> Submission:
    """``batchgen run`` through :func:`batchgen.runner.run`: validation, durable ledger,
    worker pool, unpaced unless ``rpm`` says otherwise.

    Returns the submitting phase only (from the runner's "sending" log line to the end of
    the run); loading and validating before it is ``setup_seconds``.
    """
    mark = _PhaseMark()
    logger = logging.getLogger("batchgen")
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # quiet: the table is the output
    logger.addHandler(mark)
    request = RunRequest(
        manifest=manifest,
        provider=ProviderOptions(env={"OPENAI_API_KEY": API_KEY}, base_url=base_url),
        submit=SubmitSettings(
            concurrency=concurrency, rpm=rpm, retry=RetrySettings(backoff_base=0.01)
        ),
    )
    try:
        started = time.perf_counter()
        result = run(request)
        ended_wall, ended_cpu = time.perf_counter(), time.process_time()
    finally:
        logger.removeHandler(mark)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    if mark.wall is None or mark.cpu is None:
        raise RuntimeError("batchgen did not log the start of sending")
    jobs = result.this_run.get("queued", 0)
    if jobs != len(result.plan.to_submit):
        raise RuntimeError(f"batchgen run incomplete: {dict(result.this_run)}")
    return Submission(jobs, ended_wall - mark.wall, ended_cpu - mark.cpu, mark.wall - started)


def run_openai_sdk(rows: int, base_url: str, concurrency: int) -> Submission:
    """The baseline: ``AsyncOpenAI().videos.create`` for every row under a semaphore."""
    prompts = [prompt_for(n) for n in range(rows)]
    # Imported before the clock starts: the first import takes ~0.6 s of CPU, which would
    # otherwise count against whichever repetition runs the SDK first in this process.
    importlib.import_module("openai")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "Sora API ... shut down"
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        ids = asyncio.run(_openai_sdk_batch(prompts, base_url, concurrency))
        wall, cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    if len(set(ids)) != rows:
        raise RuntimeError("the openai baseline did not create one job per row")
    return Submission(rows, wall, cpu)


async def _openai_sdk_batch(prompts: list[str], base_url: str, concurrency: int) -> list[str]:
    from openai import AsyncOpenAI  # the bench extra; imported only when measured

    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
        slots = asyncio.Semaphore(concurrency)

        async def create(prompt: str) -> str:
            async with slots:
                video = await client.videos.create(
                    prompt=prompt, model="sora-2", seconds="4", size=SIZE
                )
                return video.id

        return await asyncio.gather(*(create(p) for p in prompts))


# --------------------------------------------------------------------------- item 7: the night

SDK_NIGHT_CONCURRENCY = 16


def run_openai_sdk_night(
    rows: int, base_url: str, rpm: float, out_dir: Path, poll_interval_ms: int | None
) -> None:
    """What a user writes instead of ``batchgen run --wait --download``: for every row,
    ``create_and_poll`` then ``download_content`` into ``out_dir``, under a semaphore of
    :data:`SDK_NIGHT_CONCURRENCY`, creates evenly paced at ``rpm``. ``poll_interval_ms``
    None keeps the SDK's own (1 s unless the server hints)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "Sora API ... shut down"
        asyncio.run(_sdk_night(rows, base_url, rpm, out_dir, poll_interval_ms))


class _EvenPace:
    """Hands out send times ``interval`` apart, the first at once."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next: float | None = None

    async def turn(self) -> None:
        now = asyncio.get_running_loop().time()
        at = now if self._next is None else max(now, self._next)
        self._next = at + self._interval
        await asyncio.sleep(at - now)


async def _sdk_night(
    rows: int, base_url: str, rpm: float, out_dir: Path, poll_interval_ms: int | None
) -> None:
    from openai import AsyncOpenAI, omit

    poll = omit if poll_interval_ms is None else poll_interval_ms
    pace = _EvenPace(60.0 / rpm)
    slots = asyncio.Semaphore(SDK_NIGHT_CONCURRENCY)
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:

        async def one(n: int) -> None:
            async with slots:
                await pace.turn()
                video = await client.videos.create_and_poll(
                    prompt=prompt_for(n), model="sora-2", seconds="4", size=SIZE,
                    poll_interval_ms=poll,
                )  # fmt: skip
                if video.status != "completed":
                    raise RuntimeError(f"the SDK's job {video.id} ended {video.status}")
                content = await client.videos.download_content(video.id)
                (out_dir / f"row-{n:06d}.mp4").write_bytes(content.content)

        await asyncio.gather(*(one(n) for n in range(rows)))
