"""Stopping gracefully: SIGINT and SIGTERM become an event the run loop watches.

On a signal, workers stop taking rows, requests in flight finish (within a grace period)
and are recorded, and the process exits 130 (SIGINT) or 143 (SIGTERM), so that the same
command run again resumes where this one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import signal

logger = logging.getLogger("batchgen")

SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Stopper:
    """While entered (in a running loop), SIGINT/SIGTERM set ``event`` instead of killing us.

    ``signal`` remembers which arrived, for the exit code.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: int | None = None

    def __enter__(self) -> Stopper:
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_EXIT_CODES:
            loop.add_signal_handler(sig, self._handle, sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_EXIT_CODES:
            loop.remove_signal_handler(sig)

    def _handle(self, sig: signal.Signals) -> None:
        if self.signal is None:
            logger.warning("%s: finishing requests in flight, then stopping", sig.name)
        self.signal = sig
        self.event.set()


def signal_exit_code(sig: int) -> int:
    """130 for SIGINT, 143 for SIGTERM."""
    return SIGNAL_EXIT_CODES.get(signal.Signals(sig), 128 + sig)
