"""The broker goes away while events are posted: the API keeps accepting them (they wait in
the event store), and once the broker is back on the same port and storage the relay
catches up and every event reaches the read models, once.

Tansu keeps its data across a restart only on S3 storage (this build has no PostgreSQL or
SQLite engine; memory storage starts empty): here a local S3 (moto's server) stands in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.broker import TansuBroker, free_port
from tests import oracle
from tests.conftest import Stack, _projected, running_stack, wait_until
from tests.history import simulated
from tests.integration.test_chaos import assert_every_event_and_chained, topic_messages
from tests.integration.test_event_path import STAGES, comparable

pytestmark = pytest.mark.integration
BUCKET = "tansu"
OUTAGE_SECONDS = float(os.environ.get("OUTAGE_SECONDS", "45"))


@pytest.fixture
def s3() -> Iterator[dict[str, str]]:
    """A local S3 endpoint with an empty bucket, as the AWS_* environment Tansu reads."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    assert httpx.put(f"{endpoint}/{BUCKET}").status_code == 200  # moto checks no signature
    yield {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ALLOW_HTTP": "true"}
    server.stop()


@pytest.fixture
def durable_broker(s3: dict[str, str], tmp_path: Path) -> Iterator[TansuBroker]:
    with TansuBroker(log_path=tmp_path / "tansu.log", storage=f"s3://{BUCKET}/",
                     env=s3) as running:
        yield running


@pytest.fixture
def outage_stack(durable_broker: TansuBroker, pg_schema: str, containers: dict[str, str],
                 tmp_path: Path) -> Iterator[Stack]:
    with running_stack(durable_broker, pg_schema, containers["redis"], tmp_path) as running:
        yield running


def applied(stack: Stack) -> int:
    from redis import Redis

    value = Redis.from_url(stack.env["REDIS_URL"]).get(
        f"{stack.env['REDIS_PREFIX']}:default:applied")
    return int(value or 0)


def test_events_posted_while_the_broker_is_down_wait_and_then_reach_the_read_models(
        outage_stack: Stack, durable_broker: TansuBroker) -> None:
    stack = outage_stack
    events = simulated(seed=23, days=90)
    third = len(events) // 3
    before, during, after = events[:third], events[third:2 * third], events[2 * third:]
    with stack.client() as client:
        assert client.post("/v1/events/batch", json=before).status_code == 202
        wait_until(lambda: _projected(stack, len(before)), timeout=120,
                   message="the first third in the read models")

        durable_broker.stop(crash=True)
        down = time.monotonic()
        statuses = [client.post("/v1/events/batch", json=during[i:i + 200]).status_code
                    for i in range(0, len(during), 200)]
        assert set(statuses) == {202}
        assert applied(stack) == len(before)  # nothing can have passed the broker
        # Longer than the relay's and the projector's Kafka request timeouts (40 s): their
        # sends and fetches fail, not just wait.
        time.sleep(max(down + OUTAGE_SECONDS - time.monotonic(), 0))

        durable_broker.start()
        outage = time.monotonic() - down
        assert client.post("/v1/events/batch", json=after).status_code == 202
        wait_until(lambda: _projected(stack, len(events)), timeout=180,
                   message="every event in the read models after the broker's return")
        funnel = client.get("/v1/funnel").json()

    assert comparable(funnel) == comparable(oracle.funnel(events, stages=STAGES, filters={}))
    messages = topic_messages(stack)
    assert_every_event_and_chained(messages, events, relay_kills=0)  # none repeated
    dead = [name for name, process in stack.processes.items() if process.poll() is not None]
    assert not dead, f"{dead} exited during the outage:\n{stack.logs()}"
    print(f"broker outage of {outage:.1f} s: {len(before)} events before, {len(during)} "
          f"posted while down ({len(statuses)} batches, all 202), {len(after)} after; "
          f"{len(messages)} on the topic")
