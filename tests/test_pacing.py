"""Pacing on a virtual clock: even spacing, a shared pause on 429, backing off and recovering."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from batchgen.provider.pacing import Pacer, Throttle


class VirtualClock:
    """Time that moves only when someone sleeps: deterministic and instant."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def _send_times(pacer: Pacer, clock: VirtualClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await pacer.wait()
        times.append(clock.now)
    return times


async def test_requests_are_evenly_spaced_from_the_first_second() -> None:
    clock = VirtualClock()
    pacer = Pacer(120, clock=clock, sleep=clock.sleep)
    times = await _send_times(pacer, clock, 10)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([0.5] * 9)
    assert times[0] == 1000.0  # no initial wait, and no burst either


async def test_unpaced_sends_immediately() -> None:
    clock = VirtualClock()
    times = await _send_times(Pacer(None, clock=clock, sleep=clock.sleep), clock, 5)
    assert times == [1000.0] * 5


async def test_a_pause_holds_every_caller_and_slows_the_rate() -> None:
    clock = VirtualClock()
    pacer = Pacer(60, clock=clock, sleep=clock.sleep)
    await pacer.wait()
    pacer.pause(5.0)
    pacer.pause(5.0)  # the same 429 wave reported by another worker: one backoff only
    await pacer.wait()
    assert clock.now >= 1005.0
    assert pacer.current_rpm == pytest.approx(48.0)


async def test_rate_settles_just_under_the_rate_that_drew_a_429() -> None:
    clock = VirtualClock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)
    pacer.pause(1.0)
    slowed = pacer.current_rpm
    assert slowed is not None and slowed < 100
    for _ in range(300):
        pacer.succeeded()
    assert pacer.current_rpm is not None
    assert 90 < pacer.current_rpm < 100  # near 95: under the provider's limit, not at --rpm


async def test_the_ceiling_creeps_back_when_429s_stop() -> None:
    clock = VirtualClock()
    pacer = Pacer(100, clock=clock, sleep=clock.sleep)
    pacer.pause(1.0)
    for _ in range(20000):
        pacer.succeeded()
    assert pacer.current_rpm == pytest.approx(100, abs=0.5)


async def test_throttle_caps_requests_in_flight() -> None:
    throttle = Throttle(Pacer(None), concurrency=3)
    in_flight, peak = 0, 0
    release = asyncio.Event()

    async def request() -> None:
        nonlocal in_flight, peak
        async with throttle:
            in_flight += 1
            peak = max(peak, in_flight)
            await release.wait()
            in_flight -= 1

    tasks = [asyncio.create_task(request()) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert in_flight == 3
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert peak == 3
