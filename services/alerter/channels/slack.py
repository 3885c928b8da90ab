"""Slack incoming webhook: POST Block Kit to the hook URL; Slack answers 200 `ok`, or an
HTTP error with a reason in the body (400 invalid_payload, 403 action_prohibited, 404
channel_not_found, 410 channel_is_archived, 429 rate limited)."""

from __future__ import annotations

import httpx

from alerts.formats import slack as render
from alerts.notify import Channel, Message
from services.alerter.channels.http import post_json


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str) -> None:
    await post_json(http, channel.target, render(message), idempotency_key=idempotency_key,
                    vendor="slack")
