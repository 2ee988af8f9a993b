"""Pacing: requests spaced evenly under a per-minute rate, and one pause shared by all workers.

``--rpm 60`` means one request a second, from the first second: a run never bursts a
whole minute's quota at start. When the provider answers 429, :meth:`Pacer.pause` holds
every worker (not only the one that got it) until the provider's ``Retry-After`` has
passed, and the rate backs off so that a provider whose limit is lower than ``--rpm``
is settled at rather than hammered; it creeps back up while requests succeed. The rate
backed off from is the one that drew the 429, what was really sent (status checks go only
when due, in bursts), not ``--rpm``: a limit a tenth of ``--rpm`` is met once or twice,
not once per 20 % step down from ``--rpm``. The total time the provider held everyone
back is kept (:attr:`Pacer.held_back`) for the summary.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable

from batchgen.errors import StopRequested
from batchgen.signals import sleep_unless_stopped, unless_stopped

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: How much the rate shrinks on each 429, and how much of the lost rate each success wins back.
BACKOFF_FACTOR = 0.8
RECOVERY_STEP = 0.02
#: After a 429, the rate recovers only to this share of the rate that drew it, so that a
#: provider whose limit is below --rpm is settled just under, not hit again and again...
CEILING_FACTOR = 0.95
#: ...while the ceiling itself creeps back towards --rpm, in case the limit was passing.
CEILING_PROBE = 0.001
#: The rate that drew a 429 is measured on the requests sent in the last minute (what
#: providers count), each counted until the end of the wait the 429 asks for (when it
#: leaves the provider's window): the densest run of the latest of them...
RATE_LOOKBACK = 60.0
#: ...of at least this many; fewer say little about the limit (another client may have
#: spent it), and the backoff steps down from the current rate instead.
MIN_MEASURED = 5


class Pacer:
    """Hands out request slots evenly spaced at ``rpm``; ``None`` means unpaced.

    ``clock`` and ``sleep`` are injectable so that tests can run on a virtual clock.
    """

    def __init__(
        self,
        rpm: float | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rpm is not None and rpm <= 0:
            raise ValueError("rpm must be positive")
        self.max_rpm = rpm
        self.current_rpm = rpm
        self.ceiling_rpm = rpm  # what the rate recovers to: lowered by 429s
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_backoff = -1e18
        self._sent: collections.deque[float] = collections.deque()  # slots of RATE_LOOKBACK
        self.held_back = 0.0  # seconds every caller was held by 429 pauses, in all

    @property
    def interval(self) -> float:
        """Seconds between two requests at the current rate."""
        return 0.0 if self.current_rpm is None else 60.0 / self.current_rpm

    async def wait(self) -> None:
        """Wait for this caller's slot; slots are taken first come, first served."""
        while True:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() >= self._paused_until:
                if self.current_rpm is not None:
                    self._sent.append(slot)
                    self._forget_before(slot - RATE_LOOKBACK)
                return
            # a 429 arrived while this caller slept: wait out the pause too

    def would_wait(self) -> bool:
        """Whether a caller asking now would have to wait for its slot."""
        return max(self._next_slot, self._paused_until) > self._clock()

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (a 429's Retry-After) and slow the rate down."""
        now = self._clock()
        until = now + max(seconds, 0.0)
        # overlapping pauses (a wave of 429s) count once: the union of the held spans
        self.held_back += max(0.0, until - max(now, self._paused_until))
        self._paused_until = max(self._paused_until, until)
        self._next_slot = max(self._next_slot, self._paused_until)
        if self.current_rpm is not None and now - self._last_backoff >= max(seconds, self.interval):
            # one backoff per pause, however many workers report the same 429 wave
            drawn = min(self.current_rpm, self._sent_rpm(now, seconds))
            self.ceiling_rpm = max(1.0, drawn * CEILING_FACTOR)
            self.current_rpm = max(1.0, drawn * BACKOFF_FACTOR)
            self._last_backoff = now

    def _sent_rpm(self, now: float, wait: float) -> float:
        """The rate that drew a 429 asking for ``wait``: of the last N requests sent within
        :data:`RATE_LOOKBACK` (N at least :data:`MIN_MEASURED`), the most per minute from
        the first of them to the end of ``wait``; infinite (unknown) with fewer."""
        self._forget_before(now - RATE_LOOKBACK)
        end = now + max(wait, 0.0)
        rates = [
            count * 60.0 / (end - sent)
            for count, sent in enumerate(reversed(self._sent), start=1)
            if count >= MIN_MEASURED and end > sent
        ]
        return max(rates, default=float("inf"))

    def _forget_before(self, moment: float) -> None:
        while self._sent and self._sent[0] <= moment:
            self._sent.popleft()

    def succeeded(self) -> None:
        """A request went through: win back a little of the rate lost to 429s."""
        if self.current_rpm is None or self.max_rpm is None or self.ceiling_rpm is None:
            return
        self.ceiling_rpm += (self.max_rpm - self.ceiling_rpm) * CEILING_PROBE
        gap = max(self.ceiling_rpm - self.current_rpm, 0.0)
        self.current_rpm = min(self.ceiling_rpm, self.current_rpm + gap * RECOVERY_STEP)


class Throttle:
    """The concurrency cap and the pacer together: ``async with throttle:`` around a request.

    With ``stop``, a caller still waiting for its slot when ``stop`` is set gives up
    (:class:`StopRequested`) rather than send once the slot comes, and so does one that
    got its slot after ``stop`` was set: nothing is sent after a stop.
    """

    def __init__(
        self, pacer: Pacer, concurrency: int, *, stop: asyncio.Event | None = None
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.pacer = pacer
        self._slots = asyncio.Semaphore(concurrency)
        self.stop = stop

    async def __aenter__(self) -> Throttle:
        if self.stop is None or (not self._slots.locked() and not self.pacer.would_wait()):
            await self._enter()  # no wait ahead: nothing to abandon (the fast path)
        else:
            await unless_stopped(self.stop, self._enter)
        if self.stop is not None and self.stop.is_set():
            self._slots.release()
            raise StopRequested("stopped before sending")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._slots.release()

    async def sleep(self, seconds: float) -> None:
        """The wait before a request's next try; cut short by ``stop`` (StopRequested)."""
        await sleep_unless_stopped(self.stop, seconds)

    async def _enter(self) -> None:
        await self._slots.acquire()
        try:
            await self.pacer.wait()
        except BaseException:
            self._slots.release()
            raise
