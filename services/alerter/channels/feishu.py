"""Feishu/Lark (飞书) custom bot: POST an interactive card to its hook URL, signed when the
bot has a secret (签名校验): `timestamp` (s) and `sign` in the body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx

from alerts.formats import feishu as render
from alerts.notify import Channel, Message
from services.alerter.channels.errors import DeliveryError
from services.alerter.channels.http import body_code, post_json

# 11232 frequency limited (100 a minute, 5 a second per bot): later may work. 19021 (bad
# signature or timestamp), 19022 (IP refused), 19024 (keyword missing), 9499 (bad request):
# never.
RETRYABLE = frozenset({11232})


def sign(secret: str, timestamp_s: str) -> str:
    """As Feishu documents it: HMAC-SHA256 keyed with "{timestamp}\\n{secret}" over an
    empty message, base64."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str) -> None:
    if channel.secret:
        timestamp = str(int(time.time()))
        body = render(message, timestamp=timestamp, sign=sign(channel.secret, timestamp))
    else:
        body = render(message)
    response = await post_json(http, channel.target, body, idempotency_key=idempotency_key,
                               vendor="feishu")
    code, text = body_code(response, "code", "feishu")
    if code != 0:
        raise DeliveryError(f"feishu: code {code} {text}".strip(), code in RETRYABLE)
