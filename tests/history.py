"""Simulated history and its facts, folded purely (no broker, no Redis): the shared
input of view unit tests. Independent oracles read the same `events` list."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from events.parsing import parse_event
from events.rules import subject_of
from projections.columnar import LOAD_ORDER, Columns
from projections.facts import Change, Record, apply
from projections.snapshot import Snapshot

START = datetime(2017, 1, 1, tzinfo=UTC)
TZ = "Asia/Shanghai"


@cache
def _year(seed: int, days: int) -> tuple[dict[str, Any], ...]:
    from services.simulate.world import simulate

    return tuple(simulate(seed, START, START + timedelta(days=days)))


def simulated(seed: int = 11, days: int = 365) -> list[dict[str, Any]]:
    """A seeded simulated history from 2017-01-01 (one year by default), in event order."""
    return list(_year(seed, days))


def changes(events: list[dict[str, Any]], tenant: str = "default",
            tz: str = TZ) -> list[Change]:
    """`events` (all assumed accepted) as the relay would publish them."""
    versions: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    for position, raw in enumerate(events, 1):
        event = parse_event(raw, tenant=tenant, tz=tz)
        subject = subject_of(event)
        versions[subject.kind, subject.key] += 1
        out.append(Change(position, tenant, subject.kind, subject.key,
                          versions[subject.kind, subject.key], event.canonical()))
    return out


def fold(events: list[dict[str, Any]], tenant: str = "default",
         tz: str = TZ) -> dict[str, dict[str, Record]]:
    """The fact records the projector would hold after `events` (all assumed accepted)."""
    records: dict[str, dict[str, Record]] = defaultdict(dict)
    for change in changes(events, tenant, tz):
        updated = apply(records[change.kind].get(change.key), change)
        if updated is not None:
            records[change.kind][change.key] = updated
    return dict(records)


def snapshot_of(events: list[dict[str, Any]], tz: str = TZ) -> Snapshot:
    return Snapshot(fold(events, tz=tz), tz)


def columns_from(records: dict[str, dict[str, Record]], tz: str = TZ,
                 chunk: int = 500) -> Columns:
    """The column store of these records, fed as the API's loader feeds it."""
    settings = Snapshot({"pipeline": records.get("pipeline", {})})
    columns = Columns(tz, settings.stages)
    columns.pipeline = settings.pipeline
    for kind in LOAD_ORDER:
        whole = list(records.get(kind, {}).values())
        for start in range(0, len(whole), chunk):
            columns.put_many(kind, whole[start:start + chunk])
    return columns


def columns_of(events: list[dict[str, Any]], tz: str = TZ) -> Columns:
    return columns_from(fold(events, tz=tz), tz)


def one_change_at_a_time(stream: Sequence[Change], fractions: Sequence[int], tz: str = TZ
                         ) -> Iterator[tuple[int, dict[str, dict[str, Record]], Columns]]:
    """The records and the column store fed change by change, as the projector applies them
    (each record replaced whole): `(index, records, columns)` after the change at
    `len(stream) // f` for each f, and after the last one."""
    at = {len(stream) // f for f in fractions} | {len(stream) - 1}
    records: dict[str, dict[str, Record]] = {}
    columns = Columns(tz, Snapshot({}).stages)
    for index, change in enumerate(stream):
        kind = records.setdefault(change.kind, {})
        updated = apply(kind.get(change.key), change)
        if updated is not None:
            kind[change.key] = updated
            columns.put(change.kind, updated)
        if index in at:
            yield index, records, columns
