"""The alerter's dispatcher over real Redis (the alerts and their user state) and PostgreSQL
(the outbox), on a controlled clock: an unacknowledged alert climbs to the manager and the
manager's manager, an acknowledged one stops, a restart finds where each alert stands, and a
resolution goes only to those told."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from alerts.escalation import level_of
from alerts.lifecycle import Alert, Transition, opened, resolved
from alerts.notify import Channel
from alerts.routing import Escalation, QuietHours, Route, Routing
from services.alerter.delivery import fixed
from services.alerter.dispatcher import Dispatcher
from services.alerter.outbox import Outbox
from services.alerter.store import AlertStore
from services.settings import Settings

pytestmark = pytest.mark.integration
OPENED = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai
ROUTING = Routing(channels=(Channel("hook", "webhook", "http://127.0.0.1:9/", "s"),),
                  routes=(Route("hook", ("owner",)),),
                  escalations=(Escalation(30),), quiet=QuietHours())
MANAGERS = {"R-1": "M-1", "M-1": "VP-1"}


def alert(name: str) -> Alert:
    return Alert(name, "acme", "stalled_deal", "deal", f"D-{name}", OPENED, "evidence",
                 "medium", "R-1", "M-1", "T-1")


class Alerter:
    """What the alerter does with transitions: record them in Redis, hand them over."""

    def __init__(self, store: AlertStore, dispatcher: Dispatcher) -> None:
        self.store, self.dispatcher = store, dispatcher
        self.open: dict[str, Alert] = {}

    async def publish(self, transitions: list[Transition], now: datetime) -> None:
        stamped = [(t, {"history": False, "delivered_at": now.isoformat()})
                   for t in transitions]
        await self.dispatcher.told(stamped, now)
        await self.store.record(stamped)
        for t in transitions:
            if t.kind == "opened":
                self.open[t.alert.id] = t.alert
            elif t.kind == "resolved":
                self.open.pop(t.alert.id)

    async def tick(self, now: datetime) -> list[Transition]:
        self.dispatcher.looked_at = 0.0  # the once-a-second pace is the wall clock's
        steps = await self.dispatcher.escalations(now, self.alerts)
        await self.publish(steps, now)
        return steps

    def alerts(self) -> Iterable[Alert]:
        return self.open.values()


def dispatcher(outbox: Outbox, store: AlertStore) -> Dispatcher:
    return Dispatcher(outbox, fixed(ROUTING), store, "Asia/Shanghai", lambda _t: MANAGERS)


def test_escalation_climbs_stops_when_acknowledged_and_survives_a_restart(
        pg_schema: str, containers: dict[str, str]) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def run() -> list[dict[str, Any]]:
        redis = Redis.from_url(containers["redis"])
        store, outbox = AlertStore(redis, prefix), Outbox(Settings(database_url=pg_schema))
        alerter = Alerter(store, dispatcher(outbox, store))
        await alerter.publish([opened(alert("a1")), opened(alert("a2"))], OPENED)
        assert await alerter.tick(OPENED + timedelta(minutes=29)) == []
        steps = await alerter.tick(OPENED + timedelta(minutes=31))
        assert sorted((s.id, level_of(s), s.at) for s in steps) == [
            ("a1:escalated:1", 1, OPENED + timedelta(minutes=30)),
            ("a2:escalated:1", 1, OPENED + timedelta(minutes=30))]
        # The manager acknowledges a1; a2 goes on to the manager's manager.
        stored = await store.alert("acme", "a1")
        assert stored is not None
        await store.append_user_transition(
            "acme", stored[0], {"acknowledged_at": OPENED.isoformat(), "acknowledged_by": "M-1"},
            {"id": "a1:acknowledged:x", "kind": "acknowledged", "at": OPENED.isoformat()})
        # A restart: a new dispatcher finds the ladder in the outbox.
        alerter.dispatcher = dispatcher(outbox, store)
        steps = await alerter.tick(OPENED + timedelta(minutes=61))
        assert [s.id for s in steps] == ["a2:escalated:2"]
        assert await alerter.tick(OPENED + timedelta(minutes=62)) == []
        # Resolved: told to everyone told of a2 (owner, manager, manager's manager), no one
        # else; the escalation stream shows the visible step.
        await alerter.publish([resolved(alert("a2"), OPENED + timedelta(minutes=70))],
                              OPENED + timedelta(minutes=70))
        assert await alerter.tick(OPENED + timedelta(hours=5)) == []
        streamed = [body["id"] for _, body in await store.read_stream("acme", "0-0", 0)]
        assert "a2:escalated:2" in streamed and "a1:escalated:2" not in streamed
        rows = await outbox.rows("acme")
        outbox.close()
        await redis.delete(*[k async for k in redis.scan_iter(f"{prefix}:*")])
        await redis.aclose()
        return rows

    rows = asyncio.run(run())
    assert sorted((r["transition_id"], r["recipient"], r["level"]) for r in rows) == [
        ("a1:escalated:1", "M-1", 1), ("a1:opened", "R-1", 0),
        ("a2:escalated:1", "M-1", 1), ("a2:escalated:2", "VP-1", 2), ("a2:opened", "R-1", 0),
        ("a2:resolved", "M-1", 0), ("a2:resolved", "R-1", 0), ("a2:resolved", "VP-1", 0)]
    assert {r["mode"] for r in rows} == {"now"}


def test_the_daily_cap_counts_interruptions_in_the_outbox_across_a_restart(
        pg_schema: str, containers: dict[str, str]) -> None:
    capped = Routing(channels=ROUTING.channels, routes=ROUTING.routes, quiet=QuietHours(),
                     daily_cap=2)
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    async def run() -> list[dict[str, Any]]:
        redis = Redis.from_url(containers["redis"])
        store, outbox = AlertStore(redis, prefix), Outbox(Settings(database_url=pg_schema))

        def fresh() -> Dispatcher:  # a new process: nothing in memory
            return Dispatcher(outbox, fixed(capped), store, "Asia/Shanghai",
                              lambda _t: MANAGERS)

        await fresh().told([(opened(alert("a1")), {"history": False})], OPENED)
        await fresh().told([(opened(alert("a2")), {"history": False})],
                           OPENED + timedelta(hours=1))
        await fresh().told([(opened(alert("a3")), {"history": False})],
                           OPENED + timedelta(hours=2))
        # Thursday 10:00 in Shanghai: a new day, a new count.
        await fresh().told([(opened(alert("a4")), {"history": False})],
                           datetime(2026, 3, 5, 2, 0, tzinfo=UTC))
        rows = await outbox.rows("acme")
        outbox.close()
        await redis.aclose()
        return rows

    rows = {r["transition_id"]: r for r in asyncio.run(run())}
    assert [rows[f"a{i}:opened"]["mode"] for i in (1, 2, 3)] == ["now", "now", "digest"]
    assert rows["a3:opened"]["deliver_at"] == "2026-03-05T01:00:00.000000Z"  # 09:00 next day
    assert rows["a4:opened"]["mode"] == "now"
