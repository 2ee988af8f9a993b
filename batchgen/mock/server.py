"""Running the simulated API on loopback: in a test's event loop (:func:`running_mock`),
in a background thread (:class:`MockThread`) or until Ctrl-C (:func:`serve_forever`)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from batchgen.mock.app import create_app, create_cdn_app
from batchgen.mock.config import MockConfig
from batchgen.mock.state import RUNTIME_KEY, STATE_KEY, MockState


@dataclass
class RunningMock:
    """A started mock: where to send requests and what it saw."""

    base_url: str
    state: MockState
    config: MockConfig
    cdn_url: str | None = None  # the second origin serving video links, when the flavour has one


def _check_loopback(host: str) -> None:
    """The mock accepts any API key and logs them: never expose it beyond this machine."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the mock server only listens on loopback addresses, not {host!r}")


@contextlib.asynccontextmanager
async def running_mock(
    config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningMock]:
    """Start the mock on ``host:port`` (0: a free port) and stop it on exit."""
    _check_loopback(host)
    config = config if config is not None else MockConfig()
    app = create_app(config)
    async with contextlib.AsyncExitStack() as stack:
        if config.video_url == "cdn":
            cdn = await stack.enter_async_context(_listening(create_cdn_app(app), host, 0))
            app[RUNTIME_KEY].cdn_origin = cdn
        origin = await stack.enter_async_context(_listening(app, host, port))
        cdn_url = app[RUNTIME_KEY].cdn_origin
        yield RunningMock(f"{origin}/v1", app[STATE_KEY], config, cdn_url)


@contextlib.asynccontextmanager
async def _listening(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port); yields its origin, ``http://h:p``."""
    # A short shutdown timeout: a "slow" fault must not hold the test's exit for minutes.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}"
    finally:
        await runner.cleanup()


class MockThread:
    """The mock in a background thread with its own event loop, for synchronous callers."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self._config = config if config is not None else MockConfig()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._mock: RunningMock | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batchgen-mock", daemon=True)

    def __enter__(self) -> RunningMock:
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._mock is None:
            self._shutdown()
            raise RuntimeError("the mock server did not start") from self._error
        return self._mock

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to __enter__, which raises it
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with running_mock(self._config) as mock:
            self._mock = mock
            self._ready.set()
            await self._stop.wait()


def serve_forever(config: MockConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the mock until interrupted (``batchgen serve-mock``), printing its base URL."""
    _check_loopback(host)

    async def serve() -> None:
        async with running_mock(config, host=host, port=port) as mock:
            print(mock.base_url, flush=True)
            if mock.cdn_url is not None:
                print(f"video links served from {mock.cdn_url}", file=sys.stderr, flush=True)
            print("mock API running; press Ctrl-C to stop", file=sys.stderr, flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
