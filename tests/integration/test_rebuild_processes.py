"""A rebuild shared out between processes, each replaying its own partitions, leaves the
read models exactly as one process does; a helper that fails fails the rebuild, and one
whose rebuild is gone stops."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import orjson
import pytest
from redis.asyncio import Redis

from services.broker import TansuBroker, free_port
from services.readmodels.store import KINDS, FactStore
from services.rebuild import HelperFailed, Helpers, rebuild
from services.signing import Signer
from services.simulate.relayed import keyed_messages, produce

pytestmark = pytest.mark.integration
SECRET = uuid.uuid4().hex


async def _topic(bootstrap: str, partitions: int, tenants: int = 2,
                 days: int = 90) -> tuple[str, int]:
    """Simulated history of `tenants` tenants on a new topic, keyed and signed as the relay
    does."""
    topic = f"test-rebuild-processes-{uuid.uuid4().hex[:8]}"
    keyed = [m for tenant in ("default", *(f"t{n}" for n in range(1, tenants)))
             for m in keyed_messages(7, days, tenant=tenant)]
    await produce(bootstrap, topic, keyed, partitions, Signer(SECRET))
    return topic, len(keyed)


async def _read_models(store: FactStore) -> dict[str, object]:
    return {tenant: (await store.load(tenant), await store.applied(tenant))
            for tenant in sorted(await store.tenants())}


async def test_a_rebuild_in_three_processes_leaves_what_one_process_leaves(
        broker: TansuBroker, containers: dict[str, str]) -> None:
    bootstrap = broker.bootstrap_servers
    topic, count = await _topic(bootstrap, partitions=5)
    client = Redis.from_url(containers["redis"])
    alone = FactStore(client, f"test-alone-{uuid.uuid4().hex[:8]}")
    shared = FactStore(client, f"test-shared-{uuid.uuid4().hex[:8]}")
    progress: list[tuple[int, int]] = []
    try:
        one = await rebuild(bootstrap, topic, alone, signer=Signer(SECRET))
        three = await rebuild(bootstrap, topic, shared, signer=Signer(SECRET),
                              helpers=Helpers(3, containers["redis"], SECRET, share_min=1),
                              on_progress=lambda done, total: progress.append((done, total)))

        assert (one.processes, three.processes) == (1, 3)
        assert (three.messages, three.applied, three.unusable) == (count, count, 0)
        assert (one.messages, one.applied) == (count, count)
        built = await _read_models(shared)
        assert built == await _read_models(alone)
        assert set(built) == {"default", "t1"}
        assert any(built["default"][0][kind] for kind in KINDS)
        assert progress[-1] == (count, count)  # every process's messages, counted together
    finally:
        await alone.clear()
        await shared.clear()
        await client.aclose()


async def test_a_helper_that_cannot_reach_redis_fails_the_rebuild(
        broker: TansuBroker, containers: dict[str, str]) -> None:
    topic, _ = await _topic(broker.bootstrap_servers, partitions=2)
    client = Redis.from_url(containers["redis"])
    store = FactStore(client, f"test-failed-{uuid.uuid4().hex[:8]}")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    try:
        with pytest.raises(HelperFailed, match=r"partitions \[1\]"):
            await rebuild(broker.bootstrap_servers, topic, store, signer=Signer(SECRET),
                          helpers=Helpers(2, nowhere, SECRET, share_min=1))
    finally:
        await store.clear()
        await client.aclose()


async def test_a_helper_whose_rebuild_is_gone_stops_at_its_next_batch(
        broker: TansuBroker, containers: dict[str, str]) -> None:
    topic, count = await _topic(broker.bootstrap_servers, partitions=1, tenants=3, days=365)
    client = Redis.from_url(containers["redis"])
    store = FactStore(client, f"test-orphan-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "EVENTS_TOPIC": topic, "REDIS_URL": containers["redis"],
           "REDIS_PREFIX": store.prefix, "EVENTS_SIGNING_KEY": SECRET}
    helper = subprocess.Popen(
        [sys.executable, "-m", "services.rebuild_part", "0", "20000", "200000"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert helper.stdout is not None
        first = orjson.loads(helper.stdout.readline())
        helper.stdout.close()  # what the parent's death does to the pipe

        assert helper.wait(30) != 0
        applied = await store.applied("default") + await store.applied("t1") \
            + await store.applied("t2")
        assert 0 < first["messages"] <= applied < count
    finally:
        if helper.poll() is None:
            helper.kill()
        await store.clear()
        await client.aclose()
