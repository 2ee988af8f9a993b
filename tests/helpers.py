"""Helpers shared by the test files (fixtures live in conftest.py): the real CLI's result,
real files (CSV, images, a sample results file), CLI argument tuples, subprocess runs and
the polling harness around the simulated API.

No test file imports another test file; what two of them share lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import ssl
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from batchgen.columns import request_columns, video_changes
from batchgen.follow.poll import Poller
from batchgen.jobs import Job
from batchgen.ledger import Ledger, Record, read_ledger
from batchgen.mock import MockConfig, RunningMock, running_mock
from batchgen.profile import Profile
from batchgen.profile_files import load_profile
from batchgen.provider.client import VideoClient
from batchgen.provider.config import Secret
from batchgen.provider.pacing import Pacer, Throttle
from batchgen.provider.retry import RetrySettings
from batchgen.status import Status

# --- the real CLI and real files ---


API_KEY = "sk-test-RECOGNISABLE-0123456789abcdef"


@dataclass
class Invocation:
    """What one run of the real CLI printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


Invoke = Callable[..., Invocation]


def make_image(path: Path, size: tuple[int, int] = (720, 1280), fmt: str = "PNG") -> Path:
    """A real image file of ``size`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 120, 40)).save(path, fmt)
    return path


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8-sig") -> Path:
    """A CSV as Excel writes it (CRLF, BOM by default)."""

    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


FAST = ("--rpm", "100000", "--backoff", "0.01")
FOLLOW = ("--wait", "--poll-rpm", "100000", "--poll-interval", "0.05", "--timeout", "60")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def results(path: Path) -> dict[str, Record]:
    return read_ledger(path.with_name(f"{path.stem}.results.csv"))


# --- the CLI as a subprocess ---


def run_command(manifest: Path, base_url: str, *extra: str) -> list[str]:
    """``batchgen run`` as cron would start it, paced at 600 requests a minute."""
    return [
        sys.executable,
        "-m",
        "batchgen",
        "run",
        str(manifest),
        "--base-url",
        base_url,
        "--rpm",
        "600",
        *extra,
    ]


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.02)


# --- polling against the simulated API ---


T = TypeVar("T")
LOG = logging.getLogger("batchgen.test")
FAST_RETRY = RetrySettings(max_attempts=4, backoff_base=0.001, backoff_max=0.01)


async def bounded(awaitable: Awaitable[T], seconds: float = 15.0) -> T:
    """Every wait has a limit, so a hang fails fast instead of stalling CI."""
    return await asyncio.wait_for(awaitable, seconds)


class FakeClock:
    """A clock that moves only when told (for the mock's job lifecycle and expiry).

    It starts at the real time, so the mock's ``expires_at`` means the same to code that
    compares it with the real wall clock.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """A simulated API, a client for it, and an open ledger in a tmp folder."""

    mock: RunningMock
    client: VideoClient
    ledger: Ledger
    folder: Path
    clock: FakeClock

    @property
    def results(self) -> Path:
        return self.ledger.path

    def requests(self, endpoint: str) -> int:
        return self.mock.state.requests_by_endpoint[endpoint]

    async def submit(self, key: str, prompt: str = "a calm sea", **passthrough: str) -> str:
        """Create a job as the submitter does and record it; returns its job id."""
        fields = {"model": "sora-2", "prompt": prompt, "seconds": "4", "size": "720x1280"}
        row = len(self.ledger.states) + 2
        job = Job(key=key, row=row, fields=fields, passthrough=passthrough)
        video = await self.client.create(job, idempotency_key=key)
        self.ledger.record(
            key, {**request_columns(job), **video_changes(video), "job_id": video.id}
        )
        return video.id

    def throttle(self, concurrency: int = 4) -> Throttle:
        return Throttle(Pacer(None), concurrency)


@asynccontextmanager
async def harness(
    tmp_path: Path, config: MockConfig | None = None, *, profile: str | Profile = "openai"
) -> AsyncIterator[Harness]:
    config = config or MockConfig()
    clock = FakeClock()
    if isinstance(profile, str):
        profile = load_profile(profile)
    async with running_mock(config) as mock, aiohttp.ClientSession() as session:
        mock.state.clock = clock
        client = VideoClient(session, mock.base_url, profile, Secret("sk-test"))
        results = tmp_path / "batch.results.csv"
        with Ledger.open(results, passthrough=("campaign",)) as ledger:
            yield Harness(mock, client, ledger, tmp_path / "videos", clock)


def poller(h: Harness, retry: RetrySettings = FAST_RETRY) -> Poller:
    return Poller(h.client, h.ledger, h.throttle(), retry, logger=LOG)


def lines_for(results: Path, key: str) -> list[dict[str, str]]:
    """Every ledger line of ``key``, oldest first."""

    with results.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["key"] == key]


# --- a results file with a row in every status ---


XSS_PROMPT = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
FORMULA_PROMPT = '=HYPERLINK("http://evil.example/","click")'


@dataclass(frozen=True)
class Row:
    """One ledger key: its id, row number, final status and the columns it ends with."""

    key: str
    row: int
    status: str
    changes: Mapping[str, str]
    thumbnail: bool = False  # download a .webp thumbnail and a video file for it


ROWS = (
    Row("c-01", 2, Status.DOWNLOADED, {"prompt": "A paper boat in the rain"}, thumbnail=True),
    Row("c-02", 3, Status.COMPLETED, {"prompt": "Sunset over hills", "size": "1280x720"}, True),
    Row(
        "c-03",
        4,
        Status.FAILED,
        {
            "prompt": "A famous cartoon mouse",
            "error_code": "moderation_blocked",
            "error_message": "Your request was blocked by our moderation system.",
        },
    ),
    Row(
        "c-04",
        5,
        Status.ERROR,
        {"error_code": "http_503", "error_message": "gave up after 5 attempts: 503"},
    ),
    Row("c-05", 6, Status.IN_PROGRESS, {"prompt": "Clouds", "progress": "45"}),
    Row("c-06", 7, Status.QUEUED, {"prompt": "Waves"}),
    Row("c-07", 8, Status.SUBMITTING, {"prompt": "Fog"}),
    Row(
        "c-08",
        9,
        Status.REJECTED,
        {"error_code": "invalid_request_error", "error_message": "size not allowed"},
    ),
    Row("c-09", 10, Status.INVALID, {"error_code": "image", "error_message": "image is 640x480"}),
    Row("c-10", 11, Status.UNRESOLVED, {"error_code": "timeout", "error_message": "no answer"}),
    Row("c-11", 12, Status.EXPIRED, {"error_code": "video_expired", "error_message": "gone"}),
    Row("c-12", 13, Status.LOST, {"error_code": "not_found", "error_message": "job vanished"}),
    Row("c-13", 14, Status.SKIPPED_BUDGET, {"prompt": "Over budget"}),
    Row("c-14", 15, Status.COMPLETED, {"prompt": XSS_PROMPT, "campaign": "=1+2"}, True),
    Row("c-15", 16, Status.COMPLETED, {"prompt": FORMULA_PROMPT}),
)
WITH_JOB = {Status.DOWNLOADED, Status.COMPLETED, Status.FAILED, Status.IN_PROGRESS}
WITH_JOB |= {Status.QUEUED, Status.EXPIRED, Status.LOST}


def make_thumbnail(path: Path, size: tuple[int, int] = (320, 180)) -> Path:
    """A real WebP image, as the provider's ``variant=thumbnail`` returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (40, 90, 160)).save(path, "WEBP")
    return path


def build_ledger(folder: Path, rows: tuple[Row, ...] = ROWS) -> Path:
    """A results file in ``folder`` with a row in every status, written by the real Ledger.

    Asset paths are recorded relative to ``folder``, as a download run from there would;
    the caller chdirs there before loading the report.
    """
    path = folder / "tonight.results.csv"
    with Ledger.open(path, passthrough=["campaign", "owner"]) as ledger:
        for item in rows:
            ledger.record(item.key, _request(item), durable=True)
            ledger.record(item.key, {"status": item.status, **_outcome(item, folder)})
    return path


def _request(item: Row) -> dict[str, str]:
    return {
        "row": str(item.row),
        "status": Status.SUBMITTING,
        "model": "sora-2",
        "seconds": "8" if item.row % 2 else "4",
        "size": "720x1280",
        "prompt": f"prompt of {item.key}",
        "campaign": "autumn",
        "owner": "mia",
        "attempts": "1",
    }


def _outcome(item: Row, folder: Path) -> dict[str, str]:
    changes = dict(item.changes)
    if item.status in WITH_JOB:
        changes["job_id"] = f"video_{item.key}"
    if item.thumbnail:
        make_thumbnail(folder / "out" / f"{item.key}.webp")
        video = folder / "out" / f"{item.key}.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(1_200_000))
        changes.update(
            thumbnail=f"out/{item.key}.webp",
            file=f"out/{item.key}.mp4",
            file_bytes=str(video.stat().st_size),
        )
    return changes


# --- any aiohttp app as a server on 127.0.0.1 ---


class AppThread:
    """Any aiohttp app on 127.0.0.1 in a background thread, optionally behind TLS."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        self._app = app
        self._ssl = ssl_context
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.base_url = ""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self._ssl).start()
            port = int(runner.addresses[0][1])
            self.base_url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{port}"
            self._ready.set()
            await self._stopped.wait()
        finally:
            self._ready.set()
            await runner.cleanup()

    def __enter__(self) -> AppThread:
        self._thread.start()
        assert self._ready.wait(timeout=30) and self.base_url, "the server did not start"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stopped is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=30)


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """Status, parsed JSON body (or raw bytes when not JSON) and the response."""

    async def go() -> tuple[int, Any, aiohttp.ClientResponse]:
        async with session.request(method, url, **kwargs) as response:
            raw = await response.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        return response.status, body, response

    return await bounded(go())
