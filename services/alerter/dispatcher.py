"""From transitions told to deliveries planned, and from time passing to escalations.

The alerter hands every transition it recorded (`told`) here: each is planned
(`alerts/planning.py`) against the tenant's routing and written to the outbox before any
attempt; the delivery worker is woken. While live, `escalations` is asked once a second
for the steps due (`alerts/escalation.py`): the alerter records and streams them like any
transition, and they come back through `told` to be delivered. The escalation ladder
(where each told, still open alert stands) is rebuilt from the outbox after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from alerts.escalation import ESCALATED, Rung, due, escalate, level_of
from alerts.lifecycle import Alert, Transition, effective_state
from alerts.planning import FOLLOW_UPS, TOLD_ONCE_OPEN, day_start, plan, start_level
from alerts.routing import Routing
from alerts.routing_codec import RoutingInvalid, load
from services.alerter.outbox import Outbox
from services.alerter.routing_store import routing_key
from services.alerter.secrets import SecretUnreadable
from services.alerter.store import AlertStore

log = structlog.get_logger("alerter.dispatch")
ROUTING_SECONDS = 2.0  # how long a tenant's routing is reused before it is read again
ESCALATION_SECONDS = 1.0  # how often escalations are looked for


class RoutingSource:
    """The current routing of each tenant, as the API writes it to Redis (sealed secrets)."""

    def __init__(self, redis: Redis, prefix: str, unseal: Callable[[str], str]) -> None:
        self.redis, self.prefix, self.unseal = redis, prefix, unseal
        self._cache: dict[str, tuple[float, Routing | None]] = {}

    async def __call__(self, tenant: str) -> Routing | None:
        cached = self._cache.get(tenant)
        if cached and time.monotonic() - cached[0] < ROUTING_SECONDS:
            return cached[1]
        raw = await self.redis.get(routing_key(self.prefix, tenant))
        routing = None
        if raw is not None:
            try:
                routing = load(orjson.loads(raw), self.unseal)
            except (RoutingInvalid, SecretUnreadable, orjson.JSONDecodeError) as exc:
                log.warning("dispatch.routing_unreadable", tenant=tenant, error=str(exc))
        self._cache[tenant] = (time.monotonic(), routing)
        return routing


class Dispatcher:
    def __init__(self, outbox: Outbox, routing_of: Callable[[str], Any], store: AlertStore,
                 zone: str, managers: Callable[[str], Mapping[str, str | None]],
                 wake: Callable[[], None] = lambda: None) -> None:
        self.outbox, self.routing_of, self.store = outbox, routing_of, store
        self.zone, self.managers, self.wake = zone, managers, wake
        self.ladder: dict[str, Rung] = {}  # alert id -> where it stands
        self.recovered = False
        self.looked_at = 0.0

    async def told(self, published: Iterable[tuple[Transition, dict[str, Any]]],
                   now: datetime) -> None:
        """Plan and write the deliveries of transitions just recorded."""
        written = 0
        for transition, extra in published:
            alert = transition.alert
            if transition.kind in FOLLOW_UPS and transition.kind != "reopened":
                self.ladder.pop(alert.id, None)
            if extra.get("history") or transition.past:
                continue  # never news: a replay's transitions end here
            routing: Routing | None = await self.routing_of(alert.tenant)
            if routing is None:
                continue
            level, reached = 0, transition.known_at or transition.at
            if transition.kind == ESCALATED:
                level, reached = level_of(transition), transition.at
            elif transition.kind == "opened":
                level = start_level(alert, routing)
                if routing.escalations:
                    self.ladder[alert.id] = Rung(alert, level, reached)
            told = (await self.outbox.told(alert.tenant, alert.id)
                    if transition.kind in FOLLOW_UPS else ())
            counts = (await self.outbox.interruptions(alert.tenant, day_start(now, self.zone))
                      if transition.kind in TOLD_ONCE_OPEN and routing.daily_cap else {})
            dispatches = plan(transition, routing, managers=self.managers(alert.tenant),
                              zone=self.zone, interruptions=counts, now=now, level=level,
                              told=told)
            body = {**transition.as_json(), **extra}
            await self.outbox.add([(d, body, reached) for d in dispatches], now)
            written += len(dispatches)
        if written:
            self.wake()

    async def escalations(self, now: datetime, open_alerts: Callable[[], Iterable[Alert]]
                          ) -> list[Transition]:
        """The escalations due by `now` (at most once a second); `open_alerts`: the engine's
        open alerts, to rebuild the ladder from the outbox after a restart."""
        if time.monotonic() - self.looked_at < ESCALATION_SECONDS:
            return []
        self.looked_at = time.monotonic()
        current = {a.id: a for a in open_alerts()}
        if not self.recovered:
            await self._recover(current.values())
        out = []
        for alert_id, rung in list(self.ladder.items()):
            if alert_id not in current:
                del self.ladder[alert_id]  # resolved or retracted since
                continue
            rung = replace(rung, alert=current[alert_id])  # as the engine now tells it
            routing: Routing | None = await self.routing_of(rung.alert.tenant)
            when = due(rung, routing) if routing else None
            if routing is None or when is None or when > now:
                continue
            stored = await self.store.alert(rung.alert.tenant, alert_id)
            state = effective_state(*stored, now) if stored else "open"
            if state in ("acknowledged", "resolved", "retracted"):
                del self.ladder[alert_id]  # acted on or over: it never climbs again
                continue
            step = escalate(rung, state, routing, self.managers(rung.alert.tenant), now)
            if step is None:
                if state == "open":
                    del self.ladder[alert_id]  # at the top
                continue
            # Known now, whenever it fell due: news, not history, after a long stop.
            out.append(replace(step, known_at=now))
            self.ladder[alert_id] = Rung(rung.alert, level_of(step), step.at)
        return out

    async def _recover(self, open_alerts: Iterable[Alert]) -> None:
        stood = await self.outbox.ladder()
        for alert in open_alerts:
            found = stood.get((alert.tenant, alert.id))
            if found is not None and alert.id not in self.ladder:
                self.ladder[alert.id] = Rung(alert, *found)
        self.recovered = True
        log.info("dispatch.ladder_recovered", alerts=len(self.ladder))
