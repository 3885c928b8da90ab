"""The per-robot limiter on a hand-moved clock: never more than the limit in a window,
first come first served, robots counted apart."""

from __future__ import annotations

import asyncio

import pytest

from services.alerter.channels.limiter import RobotLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_sends_past_the_limit_wait_for_the_window_in_the_order_they_asked() -> None:
    clock = Clock()
    limiter = RobotLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    order: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await limiter.acquire("robot-a")
        order.append((i, clock.now))

    await asyncio.gather(*(one(i) for i in range(7)))
    assert order == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 60.0), (4, 60.0), (5, 60.0),
                     (6, 120.0)]
    assert limiter.waits == 2
    times = [at for _, at in order]
    assert all(sum(1 for t in times if start <= t < start + 60.0) <= 3 for start in times)


async def test_each_robot_has_its_own_window() -> None:
    clock = Clock()
    limiter = RobotLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        await limiter.acquire("robot-a")
    await limiter.acquire("robot-b")
    assert (clock.now, limiter.waits) == (0.0, 0)
    await limiter.acquire("robot-a")
    assert (clock.now, limiter.waits) == (60.0, 1)


def test_a_limit_must_allow_something() -> None:
    with pytest.raises(ValueError):
        RobotLimiter(0, 60.0)
