"""The signed webhook channel: the message as JSON, signed as `services/alerter/webhooks.py` signs
transitions (`X-Salespulse-Timestamp`, `X-Salespulse-Signature: sha256=...` over
"<timestamp>." + body) with the transition's `Idempotency-Key`."""

from __future__ import annotations

import time

import httpx
import orjson

from alerts.formats import webhook_body
from alerts.notify import Channel, Message
from services.alerter.channels.errors import DeliveryError
from services.alerter.channels.http import post_json
from services.alerter.webhooks import sign


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str) -> None:
    if not channel.secret:
        raise DeliveryError("webhook: the channel has no secret to sign with", retryable=False)
    body = orjson.dumps(webhook_body(message))
    timestamp = str(int(time.time()))
    await post_json(http, channel.target, body, idempotency_key=idempotency_key,
                    vendor="webhook",
                    headers={"X-Salespulse-Timestamp": timestamp,
                             "X-Salespulse-Signature": sign(channel.secret, timestamp, body)})
