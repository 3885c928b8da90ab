"""The delivery worker: due outbox rows out to their channels, with retries, backoff and a
dead-letter state.

Composing a message and sending it to a channel are ports (`Composer`, `Send`) handed in by
the composition root, so the channels and the messages (`alerts/messages.py`,
`services/alerter/channels/`) plug in without this loop knowing them. A row due `now` goes
alone; due digest rows of one recipient and channel go as one message, under one key.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
import structlog
from prometheus_client import Counter

from alerts.lifecycle import Transition
from alerts.notify import Channel, Links, Message, Recipient
from alerts.routing import Routing
from alerts.transitions import transition_from_json, view_path
from services.alerter.links import LinkSigner
from services.alerter.outbox import Outbox, Row, batch_key

log = structlog.get_logger("alerter.delivery")
SENT = Counter("salespulse_alert_deliveries_total", "Alert messages delivered", ["mode"])
FAILED = Counter("salespulse_alert_delivery_failures_total", "Alert delivery attempts failed")
DEAD = Counter("salespulse_alert_delivery_dead_total", "Alert deliveries given up")
PARALLEL = 16  # messages in flight at once: one slow channel must not hold the others


class Composer(Protocol):
    """What `alerts/messages.py` offers (a module satisfies it)."""

    def compose(self, transition: Transition, recipient: Recipient, links: Links
                ) -> Message: ...

    def compose_digest(self, transitions: list[Transition], recipient: Recipient,
                       links_for: Callable[[Transition], Links]) -> Message: ...


class Send(Protocol):
    """What `services/alerter/channels` offers: raises on failure; an exception whose
    `retryable` is False is not tried again."""

    def __call__(self, channel: Channel, message: Message, recipient: Recipient, *,
                 http: httpx.AsyncClient, idempotency_key: str) -> Awaitable[None]: ...


RoutingOf = Callable[[str], Awaitable[Routing | None]]
Clock = Callable[[], datetime]


def recipient(routing: Routing, recipient_id: str) -> Recipient:
    return routing.contacts.get(recipient_id) or Recipient(recipient_id, recipient_id)


class DeliveryWorker:
    def __init__(self, outbox: Outbox, composer: Composer, send: Send, routing_of: RoutingOf,
                 links: LinkSigner, http: httpx.AsyncClient, clock: Clock, *,
                 attempts: int, backoff_seconds: float) -> None:
        self.outbox, self.composer, self.send = outbox, composer, send
        self.routing_of, self.links, self.http, self.clock = routing_of, links, http, clock
        self.attempts, self.backoff = attempts, backoff_seconds
        self.wake = asyncio.Event()
        self._gate = asyncio.Semaphore(PARALLEL)
        # Keys being sent: a send slower than its backoff is not started a second time.
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver what is due until `stop`; woken early when new rows are written."""
        try:
            await self._loop(stop)
        finally:
            if self._tasks:  # the stop's grace is the caller's (a cancel ends them)
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def abandon(self) -> None:
        """Cancel the sends in flight (a stop out of patience): their rows stay pending and
        are tried again after their backoff, under the same key."""
        for task in list(self._tasks):
            task.cancel()

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.deliver_due(wait=False)
                upcoming = await self.outbox.next_due()
            except Exception as exc:  # noqa: BLE001 - the database may come back: retry
                log.warning("delivery.outbox_unreachable", error=f"{type(exc).__name__}: {exc}")
                upcoming = None
            wait = 1.0 if upcoming is None else min(
                max((upcoming - self.clock()).total_seconds(), 0.01), 1.0)
            self.wake.clear()
            waiters = [asyncio.ensure_future(self.wake.wait()),
                       asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def deliver_due(self, wait: bool = True) -> int:
        """Send every row due now (`wait`: until all are done; else in the background, so
        a slow channel holds up no other); returns the messages started."""
        rows = await self.outbox.due(self.clock())
        groups: dict[tuple[str, ...], list[Row]] = defaultdict(list)
        for row in rows:
            if row.key in self._in_flight:
                continue
            if row.mode == "digest":
                groups[(row.tenant, row.recipient, row.channel, row.batch or "")].append(row)
            else:
                groups[(row.key,)].append(row)
            self._in_flight.add(row.key)  # now, before any task of it starts
        if wait:
            await asyncio.gather(*(self._guarded(group) for group in groups.values()))
        else:
            for group in groups.values():
                task = asyncio.create_task(self._guarded(group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return len(groups)

    async def _guarded(self, rows: list[Row]) -> None:
        keys = {r.key for r in rows}
        try:
            async with self._gate:
                await self._deliver(rows)
        except Exception as exc:  # noqa: BLE001 - one message must not stop the others
            log.warning("delivery.crashed", keys=sorted(keys),
                        error=f"{type(exc).__name__}: {exc}")
        finally:
            self._in_flight -= keys

    async def _deliver(self, rows: Sequence[Row]) -> None:
        first = rows[0]
        digest = first.mode == "digest"
        key = first.batch or (batch_key(r.key for r in rows) if digest else first.key)
        keys = [r.key for r in rows]
        attempt = max(r.attempts for r in rows)  # attempts made before this one
        now = self.clock()
        # Counted, with the next moment due, before the send: a crash retries after it.
        await self.outbox.attempt(keys, now + timedelta(seconds=self.backoff * 2 ** attempt),
                                  key if digest else None)
        routing = await self.routing_of(first.tenant)
        channel = next((c for c in routing.channels if c.id == first.channel), None) \
            if routing else None
        if routing is None or channel is None:
            await self._failed(keys, "the channel is no longer configured", attempt, False)
            return
        person = recipient(routing, first.recipient)
        transitions = [transition_from_json(r.transition) for r in rows]

        def links_for(transition: Transition) -> Links:
            alert = transition.alert
            return self.links.links(alert.tenant, alert.id, person.id, view_path(alert), now)

        try:
            message = (self.composer.compose_digest(transitions, person, links_for) if digest
                       else self.composer.compose(transitions[0], person,
                                                  links_for(transitions[0])))
            await self.send(channel, message, person, http=self.http, idempotency_key=key)
        except Exception as exc:  # noqa: BLE001 - a sender's failure, told by its reason
            await self._failed(keys, f"{type(exc).__name__}: {exc}", attempt,
                               bool(getattr(exc, "retryable", True)))
            return
        await self.outbox.sent(keys, self.clock())
        SENT.labels("digest" if digest else "now").inc()

    async def _failed(self, keys: list[str], error: str, attempt: int, retryable: bool
                      ) -> None:
        dead = not retryable or attempt + 1 >= self.attempts
        FAILED.inc()
        if dead:
            DEAD.inc()
        log.warning("delivery.failed", keys=keys, attempt=attempt + 1, dead=dead, error=error)
        await self.outbox.failed(keys, error, dead=dead)


def fixed(value: Any) -> Callable[[str], Awaitable[Any]]:
    """A `routing_of` that always answers `value` (tests, one-tenant tools)."""
    async def routing_of(_tenant: str) -> Any:
        return value
    return routing_of
