"""Stopping: SIGINT and SIGTERM become an event the run watches; a second one ends it at once.

On the first signal nothing new is sent: workers waiting for a request slot, a retry or a
remix's source give up at once (:func:`unless_stopped`), requests already on the wire
finish and are recorded, within a grace period, and the process exits 130 (SIGINT) or
143 (SIGTERM). A second signal, or the grace period running out, abandons the requests
in flight: their rows keep the fsync'd ``submitting`` line, so the next run looks them
up exactly as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from batchgen.errors import StopRequested

logger = logging.getLogger("batchgen")

SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
DEFAULT_GRACE_SECONDS = 30.0
#: The run's own parts end in-flight requests at the grace period; this backstop, a
#: little later, covers anything else still holding the exit up.
BACKSTOP_SECONDS = 1.0

T = TypeVar("T")


class Stopper:
    """While entered (in a running loop), SIGINT/SIGTERM set ``event`` instead of killing us.

    ``signal`` remembers which arrived, for the exit code. A second signal (or
    ``grace_seconds`` after the first, plus a backstop margin) cancels the task that
    entered the stopper; :meth:`__exit__` swallows that cancellation, so the caller
    goes on to close the results file and report the stop.
    """

    def __init__(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        self.event = asyncio.Event()
        self.signal: int | None = None
        self.forced = False  # requests in flight were abandoned
        self._grace = grace_seconds
        self._task: asyncio.Task[object] | None = None
        self._backstop: asyncio.TimerHandle | None = None

    def __enter__(self) -> Stopper:
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in SIGNAL_EXIT_CODES:
            loop.add_signal_handler(sig, self._handle, sig)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_EXIT_CODES:
            loop.remove_signal_handler(sig)
        if self._backstop is not None:
            self._backstop.cancel()
        if self.forced and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            if self._task is not None:
                self._task.uncancel()
            return True  # our own cancellation: the caller reports the stop
        return False

    def _handle(self, sig: signal.Signals) -> None:
        if self.signal is None:
            logger.warning(
                "%s: sending nothing more; finishing the requests in flight (at most %g s), "
                "then stopping (%s again stops at once)",
                sig.name,
                self._grace,
                sig.name,
            )
            loop = asyncio.get_running_loop()
            self._backstop = loop.call_later(self._grace + BACKSTOP_SECONDS, self._abandon)
        else:
            logger.warning(
                "%s again: stopping now; requests in flight are abandoned, and the next run "
                "looks their rows up",
                sig.name,
            )
            self._abandon()
        self.signal = sig
        self.event.set()

    def _abandon(self) -> None:
        if not self.forced and self._task is not None:
            self.forced = True
            self._task.cancel()


def signal_exit_code(sig: int) -> int:
    """130 for SIGINT, 143 for SIGTERM."""
    return SIGNAL_EXIT_CODES.get(signal.Signals(sig), 128 + sig)


async def unless_stopped(stop: asyncio.Event, waiting: Callable[[], Awaitable[T]]) -> T:
    """What ``waiting()`` returns; or, as soon as ``stop`` is set, :class:`StopRequested`
    (``waiting`` is cancelled, so a slot it was queueing for is never taken)."""
    if stop.is_set():
        raise StopRequested("stopped before waiting")
    waiter = asyncio.ensure_future(waiting())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter  # lets it release what it held before we go on
    if waiter.cancelled():
        raise StopRequested("stopped while waiting")
    return waiter.result()


async def sleep_unless_stopped(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``; raise :class:`StopRequested` as soon as ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
    else:
        await unless_stopped(stop, lambda: asyncio.sleep(seconds))
