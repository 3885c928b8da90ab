"""PostgreSQL goes away (its connections cut, new ones refused, through a TCP proxy in front
of it): ingest answers 503 with a problem body, never 500, stores nothing half-way, and
accepts again once the database is back; the relay and projector carry on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from services.broker import TansuBroker
from tests.conftest import Stack, _projected, running_stack, wait_until
from tests.history import simulated
from tests.proxy import Proxy

pytestmark = pytest.mark.integration


@pytest.fixture
def proxied_stack(broker: TansuBroker, pg_schema: str, containers: dict[str, str],
                  tmp_path: Path) -> Iterator[tuple[Stack, Proxy]]:
    url = urlparse(pg_schema)
    proxy = Proxy((url.hostname or "127.0.0.1", url.port or 5432))
    through = urlunparse(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
    with running_stack(broker, through, containers["redis"], tmp_path) as running:
        yield running, proxy


def test_ingest_answers_503_while_the_store_is_unreachable_and_accepts_after(
        proxied_stack: tuple[Stack, Proxy]) -> None:
    stack, proxy = proxied_stack
    events = simulated(days=20)
    before, during, after = events[:300], events[300:400], events[400:]
    assert stack.post(before).accepted == len(before)

    proxy.cut()
    with stack.client() as client:
        answers = [client.post("/v1/events/batch", json=during) for _ in range(3)]
        answers.append(client.post("/v1/events", json=during[0]))
    statuses = [a.status_code for a in answers]
    print(f"while PostgreSQL was unreachable: {statuses}")
    assert set(statuses) == {503}, [a.text for a in answers]
    for answer in answers:
        problem = answer.json()
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == 503 and problem["title"] and problem["detail"]

    proxy.restore()
    with stack.client() as client:
        wait_until(lambda: client.post("/v1/events/batch", json=during).status_code == 202,
                   timeout=60, message="ingest to accept again")
    assert stack.post(after).accepted == len(after)
    wait_until(lambda: _projected(stack, len(events)), timeout=120,
               message="every event projected once")
    for name in ("relay", "projector", "alerter"):
        assert stack.processes[name].poll() is None, f"{name} exited:\n{stack.logs()}"
