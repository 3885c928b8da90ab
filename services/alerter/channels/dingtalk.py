"""DingTalk (钉钉) custom robot: POST markdown to its `access_token` URL, signed when the
robot has a secret (安全设置 "加签"): `timestamp` (ms) and `sign` as query parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

import httpx

from alerts.formats import dingtalk as render
from alerts.notify import Channel, Message
from services.alerter.channels.errors import DeliveryError
from services.alerter.channels.http import body_code, post_json

# -1 system busy, 130101 sending too fast (20 a minute): later may work. 310000 (keyword
# missing, signature or IP refused), 300001 (no such token), 400013 (group gone): never.
RETRYABLE = frozenset({-1, 130101})


def sign(secret: str, timestamp_ms: str) -> str:
    """As DingTalk documents it: HMAC-SHA256 keyed with the secret over
    "{timestamp}\\n{secret}", base64, then URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, timestamp_ms: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


async def send(channel: Channel, message: Message, *, http: httpx.AsyncClient,
               idempotency_key: str) -> None:
    url = channel.target
    if channel.secret:
        url = signed_url(url, channel.secret, str(round(time.time() * 1000)))
    response = await post_json(http, url, render(message), idempotency_key=idempotency_key,
                               vendor="dingtalk")
    code, text = body_code(response, "errcode", "dingtalk")
    if code != 0:
        raise DeliveryError(f"dingtalk: errcode {code} {text}".strip(), code in RETRYABLE)
