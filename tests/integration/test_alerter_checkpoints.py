"""The alerter's checkpoint in a real Redis (services/alerter/checkpoints.py): what is saved
loads back as the same engine state and offsets; one made for another alerter, another
layout or another log is ignored (the alerter then replays from offset zero)."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from alerts.checkpoint import state_of
from alerts.engine import AlertEngine
from alerts.tenancy import TenantShare
from services.alerter.checkpoints import Checkpoints, Resumed
from services.alerter.store import rule_settings
from services.settings import Settings
from tests.history import changes, simulated

pytestmark = pytest.mark.integration


def engine_after(settings: Settings, days: int) -> AlertEngine:
    engine = AlertEngine(rule_settings(settings))
    for change in changes(simulated(days=days)):
        engine.apply(change)
    return engine


async def first_offsets() -> dict[int, int]:
    return {0: 0, 1: 0}


async def roundtrip(redis_url: str, mutate: Any = None, partitions: int = 2,
                    **other: Any) -> tuple[AlertEngine, Resumed | None]:
    """Save a checkpoint with one alerter's settings, change it with `mutate`, and load it
    with `other` settings (or the same)."""
    prefix = f"test-checkpoint-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=redis_url, redis_prefix=prefix, events_topic="events-x")
    redis = Redis.from_url(redis_url)
    try:
        saver = Checkpoints(redis, settings, TenantShare())
        engine = engine_after(settings, 40)
        await saver.save(engine, {0: 5, 1: 7}, 12, True)
        if mutate is not None:
            body = orjson.loads(zlib.decompress(await redis.get(saver.key)))
            await redis.set(saver.key, mutate(body))
        reader_settings = settings.model_copy(update=other.pop("settings", {}))
        reader = Checkpoints(redis, reader_settings, other.pop("share", TenantShare()))
        loaded = await reader.load(lambda: AlertEngine(rule_settings(reader_settings)),
                                   partitions, other.pop("first", first_offsets))
        return engine, loaded
    finally:
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
        await redis.aclose()


def test_a_saved_checkpoint_loads_as_the_same_state_and_offsets(
        containers: dict[str, str]) -> None:
    engine, loaded = asyncio.run(roundtrip(containers["redis"]))
    assert loaded is not None
    assert (loaded.offsets, loaded.last, loaded.live) == ({0: 5, 1: 7}, 12, True)
    assert state_of(loaded.engine) == state_of(engine)
    assert loaded.engine.tenants["default"].alerts  # a state worth the name


def pack(body: dict[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps(body))


async def later_first_offsets() -> dict[int, int]:
    return {0: 6, 1: 0}  # partition 0 was cut past the checkpoint's offset 5


@pytest.mark.parametrize("case", [
    {"mutate": lambda body: pack({**body, "version": 99})},
    {"mutate": lambda body: pack({**body, "engine": {**body["engine"], "version": 99}})},
    {"mutate": lambda body: b"not a checkpoint"},
    {"partitions": 3},
    {"settings": {"alert_stall_days": 30.0}},
    {"settings": {"events_topic": "events-y"}},
    {"settings": {"events_signing_key": "now-signed"}},
    {"share": TenantShare(3, 0)},
    {"first": later_first_offsets},
], ids=["envelope version", "engine version", "garbage", "partitions", "rule settings",
        "topic", "signing", "share", "log cut"])
def test_a_checkpoint_for_another_alerter_layout_or_log_is_ignored(
        containers: dict[str, str], case: dict[str, Any]) -> None:
    _, loaded = asyncio.run(roundtrip(containers["redis"], **case))
    assert loaded is None
