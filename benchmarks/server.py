"""The simulated API in a child process, so that client and server CPU can be told apart.

``python -m benchmarks.server [options]`` prints its base URL on one line and serves until
its stdin closes. Besides the simulated ``/videos`` API it answers ``GET /v1/_bench/stats``
with what the server saw (creates, 429s, when each job was created) and its own CPU time,
for the benchmark in the parent process to read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

import batchgen.mock.faults as mock_faults
from batchgen.mock import STATE_KEY, Faults, MockConfig, create_app

API_KEY = "sk-bench-0123456789"
STATS_PATH = "/_bench/stats"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ServerOptions:
    """How the simulated API behaves for one measurement."""

    latency: float = 0.0
    rate_limit_rpm: int | None = None
    rate_window: float = 60.0  # seconds of the server's sliding rate-limit window
    video_bytes: int = 64 * 1024
    job_duration: float = 0.0

    def argv(self) -> list[str]:
        """These options as command-line arguments of ``python -m benchmarks.server``."""
        args = ["--latency", str(self.latency), "--rate-window", str(self.rate_window)]
        args += ["--video-bytes", str(self.video_bytes), "--job-duration", str(self.job_duration)]
        if self.rate_limit_rpm is not None:
            args += ["--rate-limit-rpm", str(self.rate_limit_rpm)]
        return args


@dataclass(frozen=True)
class ServerStats:
    """What the simulated API saw, read from its stats endpoint."""

    create_requests: int
    jobs_created: int
    rate_limited: int
    created_at: tuple[float, ...]  # wall-clock time of every job's creation, sorted
    cpu_seconds: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerStats:
        return cls(
            create_requests=int(data["create_requests"]),
            jobs_created=int(data["jobs_created"]),
            rate_limited=int(data["rate_limited"]),
            created_at=tuple(sorted(float(t) for t in data["created_at"])),
            cpu_seconds=float(data["cpu_seconds"]),
        )


class ServerProcess:
    """``with ServerProcess(options) as server:`` runs the simulated API in a child process."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "benchmarks.server", *self.options.argv()]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the simulated API did not start (it printed {line!r})")
        self.base_url = line
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the child's cue to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stats(self) -> ServerStats:
        """What the server saw so far."""
        request = urllib.request.Request(
            self.base_url + STATS_PATH, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        with _NO_PROXY.open(request, timeout=30) as response:
            return ServerStats.from_json(json.loads(response.read()))


# --------------------------------------------------------------------------- the child process


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return web.json_response(
        {
            "create_requests": state.create_requests,
            "jobs_created": state.jobs_created,
            "rate_limited": state.rate_limited,
            "created_at": [job["_started"] for job in state.jobs.values()],
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }
    )


def _config(args: argparse.Namespace) -> MockConfig:
    limit = args.rate_limit_rpm
    if limit is not None:
        # the mock counts creates per RATE_WINDOW: the same rate over a shorter window
        limit = max(1, round(limit * args.rate_window / 60))
    faults = Faults(rate_limit_rpm=limit)
    return MockConfig(
        faults=faults,
        latency=args.latency,
        job_duration=args.job_duration,
        video_bytes=args.video_bytes,
    )


async def _serve(args: argparse.Namespace) -> None:
    # The window is a module constant; a bench may shorten it to make a limit bind sooner.
    mock_faults.RATE_WINDOW = args.rate_window
    app = create_app(_config(args))
    app.router.add_get("/v1" + STATS_PATH, _stats, name="bench_stats")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = int(runner.addresses[0][1])
        print(f"http://127.0.0.1:{port}/v1", flush=True)
        await _until_stdin_closes()
    finally:
        await runner.cleanup()


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def watch() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=watch, daemon=True).start()
    await closed.wait()


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit-rpm", type=int, default=None)
    parser.add_argument("--rate-window", type=float, default=60.0)
    parser.add_argument("--video-bytes", type=int, default=64 * 1024)
    parser.add_argument("--job-duration", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulated API until stdin closes."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
