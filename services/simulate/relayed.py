"""A simulated history as the relay publishes it: the messages, keyed by subject, and a
topic holding them. The worlds of the fold benchmark and of the tests of every consumer."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from events.parsing import parse_event
from events.rules import subject_of
from projections.facts import MESSAGE_SCHEMA
from services.signing import Signer
from services.simulate.world import simulate

START = datetime(2017, 1, 1, tzinfo=UTC)


def messages(seed: int, days: int, *, tenant: str = "default",
             leads_per_day: float = 4.0) -> list[bytes]:
    """The relay's messages for a simulated history: canonical events, versions per subject."""
    return [value for _, value in keyed_messages(seed, days, tenant=tenant,
                                                 leads_per_day=leads_per_day)]


def keyed_messages(seed: int, days: int, *, tenant: str = "default",
                   leads_per_day: float = 4.0) -> list[tuple[bytes, bytes]]:
    """(key, value) of each message: keyed by subject, as the relay keys by aggregate."""
    versions: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    raw_events = simulate(seed, START, START + timedelta(days=days), leads_per_day=leads_per_day)
    for position, raw in enumerate(raw_events, 1):
        event = parse_event(raw, tenant=tenant)
        subject = subject_of(event)
        versions[subject.kind, subject.key] += 1
        out.append((f"{tenant}/{subject.kind}/{subject.key}".encode(), orjson.dumps({
            "schema": MESSAGE_SCHEMA, "position": position, "previous": position - 1,
            "kind": subject.kind, "key": subject.key,
            "version": versions[subject.kind, subject.key], "event": event.canonical(),
            "relayed_at": time.time(),
        })))
    return out


class Relayed(NamedTuple):
    """A message as consumed: its value and headers (the relay's signature, or none)."""

    value: bytes
    headers: list[tuple[str, bytes]]


async def produce(bootstrap: str, topic: str, keyed: list[tuple[bytes, bytes]],
                  partitions: int, signer: Signer | None = None) -> None:
    """`keyed` messages on a new topic of `partitions`, signed by `signer` as the relay signs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value=value, key=key,
                                    headers=signer.headers(value) if signer else None)
                for key, value in keyed]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
