"""Microsoft Teams: POST an Adaptive Card to a workflow's "when a Teams webhook request is
received" URL; it answers 202 Accepted (the flow runs after), 429 when throttled."""

from __future__ import annotations

import httpx

from alerts.formats import teams as render
from alerts.notify import Channel, Message
from services.alerter.channels.http import post_json


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str) -> None:
    await post_json(http, channel.target, render(message), idempotency_key=idempotency_key,
                    vendor="teams")
