"""The simulated API in a child process, so that client and server CPU can be told apart.

``python -m benchmarks.server [options]`` prints its base URL on one line and serves until
its stdin closes, as ``--profile``'s provider serves it (``MockConfig.for_profile``). Besides
the simulated ``/videos`` API it answers ``GET /v1/_bench/stats`` with what the server saw
(creates, 429s and those of them on status checks, requests by endpoint with previews apart,
each job's creation time and duration) and its own CPU time, for the benchmark in the
parent process to read.

``--workers N`` serves the same port from N processes (``SO_REUSEPORT``: the kernel spreads
connections over them), so that the simulated API is not the bottleneck; each worker has its
own jobs, and the stats are the first process's only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import resource
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from batchgen.mock import CONFIG_KEY, STATE_KEY, Faults, MockConfig, create_app
from batchgen.mock.app import create_cdn_app
from batchgen.mock.lifecycle import job_duration
from batchgen.mock.state import RUNTIME_KEY
from batchgen.profile_files import load_profile

API_KEY = "sk-bench-0123456789"
STATS_PATH = "/_bench/stats"
STATS_ROUTE = "bench_stats"
#: Content requests for a preview variant (counted apart from the video's ``content``).
PREVIEWS_KEY = web.AppKey("bench_previews", collections.Counter[str])
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ServerOptions:
    """How the simulated API behaves for one measurement."""

    latency: float = 0.0
    rate_limit_rpm: int | None = None
    status_rate_limit_rpm: int | None = None  # status checks (retrieve, list), apart from creates
    rate_window: float = 60.0  # seconds of the server's sliding rate-limit windows
    video_bytes: int = 64 * 1024
    job_duration: float = 0.0
    job_duration_min: float | None = None  # spread: uniform in [this, job_duration], seeded
    profile: str = "openai"  # whose provider to behave as (a name or a profile file)
    refresh_seconds: float | None = None  # None: the profile's
    workers: int = 1  # processes serving the one port

    def argv(self) -> list[str]:
        """These options as command-line arguments of ``python -m benchmarks.server``."""
        args = ["--latency", str(self.latency), "--rate-window", str(self.rate_window)]
        args += ["--video-bytes", str(self.video_bytes), "--job-duration", str(self.job_duration)]
        args += ["--profile", self.profile, "--workers", str(self.workers)]
        optional = {
            "--rate-limit-rpm": self.rate_limit_rpm,
            "--status-rate-limit-rpm": self.status_rate_limit_rpm,
            "--job-duration-min": self.job_duration_min,
            "--refresh-seconds": self.refresh_seconds,
        }
        for flag, value in optional.items():
            if value is not None:
                args += [flag, str(value)]
        return args


@dataclass(frozen=True)
class JobTimes:
    """One job as the server made it: its creation order and time, and its duration."""

    sequence: int
    created: float
    duration: float


@dataclass(frozen=True)
class ServerStats:
    """What the simulated API saw, read from its stats endpoint."""

    create_requests: int
    jobs_created: int
    rate_limited: int
    created_at: tuple[float, ...]  # wall-clock time of every job's creation, sorted
    cpu_seconds: float
    # every request by endpoint (create, list, retrieve, content, preview, cdn, ...)
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)
    jobs: tuple[JobTimes, ...] = ()  # in creation order
    status_rate_limited: int = 0  # of rate_limited, those answered to status checks

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerStats:
        """The stats endpoint's answer."""
        jobs = (JobTimes(int(j["sequence"]), j["created"], j["duration"]) for j in data["jobs"])
        return cls(
            create_requests=int(data["create_requests"]),
            jobs_created=int(data["jobs_created"]),
            rate_limited=int(data["rate_limited"]),
            created_at=tuple(sorted(float(t) for t in data["created_at"])),
            cpu_seconds=float(data["cpu_seconds"]),
            requests_by_endpoint={k: int(v) for k, v in data["requests_by_endpoint"].items()},
            jobs=tuple(sorted(jobs, key=lambda job: job.sequence)),
            status_rate_limited=int(data["status_rate_limited"]),
        )

    @property
    def requests(self) -> int:
        """Every request the server saw."""
        return sum(self.requests_by_endpoint.values())


class ChildServer:
    """``with ChildServer(command) as server:`` runs a simulated API in a child process.

    ``command`` prints the API's base URL on one line once it listens, serves until its
    stdin closes, and answers :data:`STATS_PATH` with what :class:`ServerStats` reads. Kept
    apart from the bench's process so that the client's CPU time is its own.
    """

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._process = _piped(self.command)
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


class ServerProcess(ChildServer):
    """``with ServerProcess(options) as server:`` runs the simulated API (batchgen's mock)."""

    def __init__(self, options: ServerOptions) -> None:
        super().__init__([sys.executable, "-m", "benchmarks.server", *options.argv()])
        self.options = options


# --------------------------------------------------------------------------- the child process


async def _stats(request: web.Request) -> web.Response:
    state, config = request.app[STATE_KEY], request.app[CONFIG_KEY]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    by_endpoint = collections.Counter(state.requests_by_endpoint)
    del by_endpoint[STATS_ROUTE]  # the bench's own questions are no client's requests
    previews = request.app[PREVIEWS_KEY]["preview"]
    by_endpoint.subtract({"content": previews})
    by_endpoint["preview"] = previews
    jobs = [
        {
            "sequence": job["_sequence"],
            "created": job["_started"],
            "duration": job_duration(job, config),
        }
        for job in state.jobs.values()
    ]
    return web.json_response(
        {
            "create_requests": state.create_requests,
            "jobs_created": state.jobs_created,
            "rate_limited": state.rate_limited,
            "status_rate_limited": state.status_rate_limited,
            "created_at": [job["_started"] for job in state.jobs.values()],
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "requests_by_endpoint": {k: v for k, v in by_endpoint.items() if v},
            "jobs": jobs,
        }
    )


@web.middleware
async def _count_previews(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Counts content requests for a preview variant, which the mock counts as ``content``."""
    if (
        request.match_info.route.name == "content"
        and request.query.get("variant", "video") != "video"
    ):
        request.app[PREVIEWS_KEY]["preview"] += 1
    return await handler(request)


def _config(args: argparse.Namespace) -> MockConfig:
    def per_window(rpm: int | None) -> int | None:
        # the mock counts requests per rate_window: the same rate over a shorter window
        return None if rpm is None else max(1, round(rpm * args.rate_window / 60))

    faults = Faults(
        rate_limit_rpm=per_window(args.rate_limit_rpm),
        status_rate_limit_rpm=per_window(args.status_rate_limit_rpm),
        rate_window=args.rate_window,
    )
    timing = {} if args.refresh_seconds is None else {"refresh_seconds": args.refresh_seconds}
    return MockConfig.for_profile(
        load_profile(args.profile),
        faults=faults,
        latency=args.latency,
        job_duration=args.job_duration,
        job_duration_min=args.job_duration_min,
        video_bytes=args.video_bytes,
        **timing,
    )


def _app(args: argparse.Namespace) -> web.Application:
    app = create_app(_config(args))
    app[PREVIEWS_KEY] = collections.Counter()
    app.middlewares.append(_count_previews)
    app.router.add_get("/v1" + STATS_PATH, _stats, name=STATS_ROUTE)
    return app


async def _serve(args: argparse.Namespace) -> None:
    app = _app(args)
    runners: list[web.AppRunner] = []
    try:
        if app[CONFIG_KEY].video_url == "cdn":  # the flavour's links point to a second origin
            cdn = await _listen(create_cdn_app(app), 0, reuse_port=False, runners=runners)
            app[RUNTIME_KEY].cdn_origin = f"http://127.0.0.1:{cdn}"
        reuse = args.workers > 1 or args.port != 0
        port = await _listen(app, args.port, reuse_port=reuse, runners=runners)
        with _Workers(args, port) as workers:
            workers.wait_ready()
            print(f"http://127.0.0.1:{port}/v1", flush=True)
            await until_stdin_closes()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def _listen(
    app: web.Application, port: int, *, reuse_port: bool, runners: list[web.AppRunner]
) -> int:
    """Serve ``app`` on 127.0.0.1:``port`` (0: a free one); returns the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    runners.append(runner)
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=reuse_port or None).start()
    return int(runner.addresses[0][1])


class _Workers:
    """The other ``--workers`` processes, serving ``port`` too; each stops when its stdin
    (a pipe from this process) closes."""

    def __init__(self, args: argparse.Namespace, port: int) -> None:
        extra = max(0, args.workers - 1) if args.port == 0 else 0  # workers spawn none
        argv = [*_argv_of(args), "--workers", "1", "--port", str(port)]
        command = [sys.executable, "-m", "benchmarks.server", *argv]
        self._processes = [_piped(command) for _ in range(extra)]

    def wait_ready(self) -> None:
        """Block until every worker listens (it prints its URL)."""
        for process in self._processes:
            assert process.stdout is not None
            if not process.stdout.readline().startswith("http://"):
                raise RuntimeError("a simulated API worker did not start")

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _piped(command: list[str]) -> subprocess.Popen[str]:
    """A child process whose stdin and stdout are pipes to this one."""
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def until_stdin_closes() -> None:
    """Return once this process's stdin closes: the parent's cue to stop serving."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def watch() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=watch, daemon=True).start()
    await closed.wait()


_OPTIONS: dict[str, tuple[type, Any]] = {
    "--latency": (float, 0.0),
    "--rate-limit-rpm": (int, None),
    "--status-rate-limit-rpm": (int, None),
    "--rate-window": (float, 60.0),
    "--video-bytes": (int, 64 * 1024),
    "--job-duration": (float, 0.0),
    "--job-duration-min": (float, None),
    "--profile": (str, "openai"),
    "--refresh-seconds": (float, None),
}


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The options a worker is started with: this process's own (but workers and port)."""
    argv: list[str] = []
    for flag in _OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    for flag, (kind, default) in _OPTIONS.items():
        parser.add_argument(flag, type=kind, default=default)
    parser.add_argument("--workers", type=int, default=1, help="processes serving the port")
    parser.add_argument("--port", type=int, default=0, help="a worker's: the port to share")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulated API until stdin closes."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
