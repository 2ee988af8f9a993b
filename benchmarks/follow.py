"""Item 6: polling and downloading finished jobs with large videos (``batchgen.follow.follower``).

The poll/download library is being written; until ``batchgen.follow.follower`` can be imported,
this item prints a "not available yet" line. The follow itself runs in a child process
(``python -m benchmarks.follow RESULTS BASE_URL OUT_DIR``) so that its peak memory is
its own; :func:`_follow_async` is the one place that calls the library.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from batchgen.ledger import Ledger
from batchgen.profile_files import load_profile
from batchgen.provider.client import VideoClient
from batchgen.provider.config import Secret
from benchmarks.clients import run_batchgen
from benchmarks.data import write_manifest
from benchmarks.measure import Figure, run_child
from benchmarks.server import API_KEY, ServerOptions, ServerProcess

FOLLOW_CONCURRENCY = 8
FOLLOW_TIMEOUT = 600.0
NOT_WIRED_EXIT = 64  # the child's exit code when this file no longer fits the library


def available() -> str | None:
    """None when ``batchgen.follow.follower`` is importable, else why this item is skipped."""
    if importlib.util.find_spec("batchgen.follow.follower") is None:
        return "batchgen.follow.follower not available yet (poll/download library in progress)"
    return None


def follow(jobs: int, video_bytes: int, reps: int, work: Path) -> list[Figure]:
    """Submit ``jobs`` rows, then follow them to downloaded files; throughput and memory."""
    megabytes = video_bytes / 1e6
    what = f"{jobs} completed jobs, {megabytes:g} MB videos"
    rate = Figure("6", f"follow + download: videos/s ({what})", "videos/s")
    bandwidth = Figure("6", "follow + download: throughput", "MB/s")
    rss = Figure("6", "follow + download: peak memory", "MB")
    for rep in range(reps):
        folder = work / f"follow-{rep}"
        folder.mkdir(parents=True)
        manifest = write_manifest(folder / "rows.csv", jobs)
        options = ServerOptions(video_bytes=video_bytes, job_duration=0.0)
        with ServerProcess(options) as server:
            run_batchgen(manifest, server.base_url, 64)
            command = [sys.executable, "-m", "benchmarks.follow"]
            command += [str(folder / "rows.results.csv"), server.base_url, str(folder / "videos")]
            result = run_child(command, folder, env={"OPENAI_API_KEY": API_KEY})
        if result.exit_code == NOT_WIRED_EXIT:
            raise NotImplementedError(result.stderr.strip())
        if result.exit_code != 0:
            raise RuntimeError(f"follow exited {result.exit_code}:\n{result.stderr[-2000:]}")
        tally = json.loads(result.stdout.strip().splitlines()[-1])
        if tally["files"] != jobs or tally["errors"]:
            raise RuntimeError(f"follow downloaded {tally} for {jobs} jobs")
        shutil.rmtree(folder)  # 20 GB a repetition: free the disk before the next
        rate.values.append(jobs / result.wall_seconds)
        bandwidth.values.append(jobs * megabytes / result.wall_seconds)
        rss.values.append(result.max_rss_mb)
    return [rate, bandwidth, rss]


def _follow(results: Path, base_url: str, out_dir: Path) -> dict[str, int]:
    """Poll every job in ``results`` to the end and download its video into ``out_dir``."""
    return asyncio.run(_follow_async(results, base_url, out_dir))


async def _follow_async(results: Path, base_url: str, out_dir: Path) -> dict[str, int]:
    from batchgen.follow.follower import FollowSettings, follow_jobs

    settings = FollowSettings(
        wait=True,
        timeout=FOLLOW_TIMEOUT,
        poll_rpm=None,  # unpaced: the simulated API has no limit
        concurrency=FOLLOW_CONCURRENCY,
        download_dir=out_dir,
        poll_interval=0.1,
    )
    with Ledger.open(results) as ledger:
        async with aiohttp.ClientSession() as session:
            key = Secret(os.environ["OPENAI_API_KEY"])
            client = VideoClient(session, base_url, load_profile("openai"), key)
            logger = logging.getLogger("batchgen")
            tally = await follow_jobs(client, ledger, settings, asyncio.Event(), logger=logger)
    return {"files": tally.files, "bytes": tally.bytes, "errors": tally.errors}


def main(argv: Sequence[str] | None = None) -> int:
    """Child process: follow and download everything in a results file; prints the tally."""
    results, base_url, out_dir = (sys.argv[1:] if argv is None else argv)[:3]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    try:
        tally = _follow(Path(results), base_url, Path(out_dir))
    except (ImportError, TypeError) as exc:  # the library's API moved under the bench
        print(
            f"benchmarks/follow.py does not match batchgen.follow.follower: {exc}", file=sys.stderr
        )
        return NOT_WIRED_EXIT
    print(json.dumps(tally))
    return 0


if __name__ == "__main__":
    sys.exit(main())
