"""A rebuild's helper process: replays the partitions it is given into the prefix its parent
cleared (`services.rebuild.Helper` starts it).

    python -m services.rebuild_part PARTITIONS BATCH KEEP    # e.g. 1,3 20000 200000

Reads KAFKA_BOOTSTRAP_SERVERS, EVENTS_TOPIC, REDIS_URL, REDIS_PREFIX and EVENTS_SIGNING_KEY
like every process; prints one JSON line per batch (`{"messages": n, "total": m}`) and a
last one with what it rebuilt (`{"rebuilt": {...}}`). Logs go to standard error. Exits 1
on failure, and at its next batch once its parent is gone (the line it prints then finds
no reader), that batch's write cancelled: at most that one write, already sent, may still
land after the rebuild that started it has ended.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import orjson
from redis.asyncio import Redis

from services import logs, signing
from services.readmodels.store import FactStore
from services.rebuild import replay_consumer, replay_partitions
from services.settings import Settings


def _say(what: dict[str, object]) -> None:
    sys.stdout.buffer.write(orjson.dumps(what) + b"\n")
    sys.stdout.flush()


async def main(partitions: list[int], batch: int, keep: int) -> None:
    settings = Settings()
    assert settings.kafka_bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required"
    # Not services.bootstrap's pool: importing the composition root (the event store, psycopg)
    # would double this process's start, which the rebuild waits for.
    redis = Redis.from_url(settings.redis_url, socket_timeout=settings.redis_socket_timeout,
                           socket_connect_timeout=2)
    consumer = replay_consumer(settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        rebuilt = await replay_partitions(
            consumer, settings.events_topic, partitions,
            FactStore(redis, settings.redis_prefix), batch=batch, keep=keep,
            signer=signing.signer(settings),
            on_progress=lambda messages, total: _say({"messages": messages, "total": total}))
    finally:
        await consumer.stop()
        await redis.aclose()
    _say({"rebuilt": dataclasses.asdict(rebuilt)})


if __name__ == "__main__":
    logs.configure("warning")
    asyncio.run(main([int(p) for p in sys.argv[1].split(",")], int(sys.argv[2]),
                     int(sys.argv[3])))
