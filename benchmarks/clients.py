"""The two clients compared: batchgen's real run path, and the script a user would write
instead with the official ``openai`` SDK. Both run in this process (the simulated API is
in another), so :func:`time.process_time` is the client's own CPU time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from batchgen.provider.resolve import ProviderOptions
from batchgen.provider.retry import RetrySettings
from batchgen.runner import RunRequest, run
from batchgen.submit import SubmitSettings
from benchmarks.data import IMAGE_SIZE, prompt_for
from benchmarks.server import API_KEY

UNPACED_RPM = 1e9  # what a user passes for "no rate limit": --rpm 1000000000


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

    size = f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
        slots = asyncio.Semaphore(concurrency)

        async def create(prompt: str) -> str:
            async with slots:
                video = await client.videos.create(
                    prompt=prompt, model="sora-2", seconds="4", size=size
                )
                return video.id

        return await asyncio.gather(*(create(p) for p in prompts))
