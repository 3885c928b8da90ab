"""The alerter's routing and delivery, wired from settings: the outbox, the tenant's routing
from Redis, the one-tap link signer, and the delivery worker running beside the alerter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import structlog
from redis.asyncio import Redis

from alerts import messages
from alerts.lifecycle import Transition
from alerts.notify import Channel, Links, Message, Recipient
from alerts.tenancy import TenantShare
from services.alerter import channels
from services.alerter.channels.email import SmtpConfig
from services.alerter.delivery import Composer, DeliveryWorker, Send
from services.alerter.dispatcher import Dispatcher, RoutingSource
from services.alerter.links import LinkSigner
from services.alerter.outbox import Outbox
from services.alerter.secrets import Sealer, link_key
from services.alerter.store import AlertStore
from services.settings import Settings

log = structlog.get_logger("alerter.routes")
STOP_GRACE_SECONDS = 3.0  # for a message in flight; unsent rows stay in the outbox


def now() -> datetime:
    return datetime.now(UTC)


class TenantWords:
    """`alerts/messages.py` with times shown in the tenant's zone."""

    def __init__(self, zone: str) -> None:
        self.tz = ZoneInfo(zone)

    def compose(self, transition: Transition, recipient: Recipient, links: Links) -> Message:
        return messages.compose(transition, recipient, links, tz=self.tz)

    def compose_digest(self, transitions: list[Transition], recipient: Recipient,
                       links_for: Callable[[Transition], Links]) -> Message:
        return messages.compose_digest(transitions, recipient, links_for, tz=self.tz)


def channel_sender(settings: Settings) -> Send:
    """`services/alerter/channels.send` with the SMTP settings read once."""
    smtp = SmtpConfig.from_settings(settings)

    async def send(channel: Channel, message: Message, recipient: Recipient, *,
                   http: httpx.AsyncClient, idempotency_key: str) -> None:
        await channels.send(channel, message, recipient, http=http,
                            idempotency_key=idempotency_key, smtp=smtp)
    return send


@asynccontextmanager
async def routed(settings: Settings, redis: Redis, store: AlertStore,
                 composer: Composer | None = None, send: Send | None = None,
                 share: TenantShare | None = None) -> AsyncIterator[Dispatcher]:
    """A dispatcher for the alerter, its delivery worker running until the block ends; with
    a `share`, it delivers only for the tenants that share owns."""
    outbox = Outbox(settings, None if share is None or share.whole else share.owns)
    routing = RoutingSource(redis, settings.redis_prefix, Sealer(settings).unseal)
    links = LinkSigner(link_key(settings), settings.public_url,
                       timedelta(hours=settings.alert_link_hours))
    http = httpx.AsyncClient(timeout=10)
    worker = DeliveryWorker(outbox, composer or TenantWords(settings.tenant_timezone),
                            send or channel_sender(settings),
                            routing, links, http, now, attempts=settings.webhook_attempts,
                            backoff_seconds=settings.webhook_backoff_seconds)
    dispatcher = Dispatcher(outbox, routing, store, settings.tenant_timezone,
                            lambda _tenant: {}, worker.wake.set)
    log.info("alerter.outbox", where=outbox.where())
    done = asyncio.Event()
    task = asyncio.create_task(worker.run(done))
    try:
        yield dispatcher
    finally:
        done.set()
        finished, _ = await asyncio.wait([task], timeout=STOP_GRACE_SECONDS)
        if not finished:
            log.warning("alerter.delivery_cut_short")  # the rows stay due in the outbox
            worker.abandon()
            await asyncio.gather(task, return_exceptions=True)
        await http.aclose()
        outbox.close()
