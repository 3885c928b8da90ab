"""Redis loses the read models (flushed, restarted without persistence): the projector
rebuilds them from the log, and meanwhile the API says so (503) instead of serving
incomplete numbers."""

from __future__ import annotations

import pytest

from tests import oracle
from tests.conftest import Stack, _forget_redis, wait_until
from tests.history import simulated
from tests.integration.test_event_path import STAGES, comparable

pytestmark = pytest.mark.integration


def test_lost_read_models_are_rebuilt_and_never_served_incomplete(stack: Stack) -> None:
    events = simulated(seed=31, days=40)
    first, rest = events[:1500], events[1500:]
    stack.post(first)
    expected = comparable(oracle.funnel(first, stages=STAGES, filters={}))

    def answer() -> tuple[int, object]:
        with stack.client() as client:
            response = client.get("/v1/funnel")
        if response.status_code == 503:
            assert response.json()["type"].endswith("/rebuilding")
            assert response.headers["Retry-After"]
            return 503, None
        assert response.status_code == 200, response.text
        return 200, comparable(response.json())

    wait_until(lambda: answer() == (200, expected), message="the funnel of the first events")

    stack.kill("projector")
    _forget_redis(stack.env["REDIS_URL"], stack.env["REDIS_PREFIX"])
    assert answer() == (503, None)  # nobody rebuilds yet: the API must not answer from nothing

    stack.start("projector")
    wait_until(lambda: answer() == (200, expected), message="the rebuilt funnel")

    # Lost again while running and while new events stream in: every answer is either
    # "rebuilding" or complete for some prefix of the log, and in the end it is all there.
    stack.post(rest[:500])
    _forget_redis(stack.env["REDIS_URL"], stack.env["REDIS_PREFIX"])
    stack.post(rest[500:])
    complete = comparable(oracle.funnel(events, stages=STAGES, filters={}))
    seen: list[int] = []

    def settled() -> bool:
        status, body = answer()
        seen.append(status)
        if status == 200:
            assert body["won"] <= complete["won"] and body["lost"] <= complete["lost"]
        return body == complete

    wait_until(settled, timeout=120, message="the funnel of every event")
    print(f"answers while rebuilding: {seen.count(503)} x 503, {seen.count(200)} x 200")
