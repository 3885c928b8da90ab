"""Redis goes away (its connections cut, new ones refused, through a TCP proxy): reads
answer 503 with a problem body, never 500; ingest goes on (202); the projector waits and
retries instead of dying, and once Redis is back every event is projected and the
funnel answers again, with the events posted during the outage."""

from __future__ import annotations

import time
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
def redis_behind_proxy(broker: TansuBroker, pg_schema: str, containers: dict[str, str],
                       tmp_path: Path) -> Iterator[tuple[Stack, Proxy]]:
    url = urlparse(containers["redis"])
    proxy = Proxy((url.hostname or "127.0.0.1", url.port or 6379))
    through = urlunparse(url._replace(netloc=f"127.0.0.1:{proxy.port}"))
    with running_stack(broker, pg_schema, through, tmp_path) as running:
        yield running, proxy


def deals_entered(stack: Stack) -> int:
    with stack.client() as client:
        funnel = client.get("/v1/funnel").raise_for_status().json()
    return int(funnel["won"] + funnel["lost"]
               + sum(stage["open_deals"] for stage in funnel["stages"]))


def test_reads_answer_503_while_redis_is_unreachable_and_nothing_is_lost(
        redis_behind_proxy: tuple[Stack, Proxy]) -> None:
    stack, proxy = redis_behind_proxy
    events = simulated(days=30)
    before, during = events[:600], events[600:]
    assert stack.post(before).accepted == len(before)
    wait_until(lambda: _projected(stack, len(before)), timeout=120,
               message="the first events projected")
    deals_before = deals_entered(stack)

    proxy.cut()
    with stack.client() as client:
        reads = [client.get(path) for path in ("/v1/funnel", "/v1/breakdown?by=rep")]
        accepted = stack.post(during).accepted  # ingest needs PostgreSQL only
    print(f"while Redis was unreachable: reads {[r.status_code for r in reads]}, "
          f"{accepted} events accepted")
    for answer in reads:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["title"] and answer.headers["Retry-After"]
    assert accepted == len(during)
    time.sleep(3)  # the projector meets the outage with events to apply
    assert stack.processes["projector"].poll() is None, stack.logs()

    proxy.restore()
    wait_until(lambda: _projected(stack, len(events)), timeout=180,
               message="every event projected after Redis came back")
    assert deals_entered(stack) > deals_before
    for name in ("api", "relay", "projector"):
        assert stack.processes[name].poll() is None, f"{name} exited:\n{stack.logs()}"
