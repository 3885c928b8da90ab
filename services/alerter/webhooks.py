"""Webhook delivery: signed, retried with exponential backoff, dead-lettered, idempotent.

Each POST carries
- `X-Salespulse-Timestamp`: seconds since the epoch when it was signed;
- `X-Salespulse-Signature: sha256=<hex>`: HMAC-SHA256 with the endpoint's secret over
  `<timestamp>.` followed by the raw body (the timestamp is signed so a captured request
  cannot be replayed later with a fresh one);
- `Idempotency-Key`: the transition id, the same on every retry and after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from prometheus_client import Counter

log = structlog.get_logger("webhooks")
DELIVERED = Counter("salespulse_webhook_deliveries_total", "Webhook deliveries that succeeded")
FAILURES = Counter("salespulse_webhook_failures_total", "Webhook attempts that failed")
DEAD = Counter("salespulse_webhook_dead_letters_total", "Webhook deliveries given up")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@dataclass(frozen=True)
class Delivery:
    tenant: str
    transition_id: str
    body: bytes


async def deliver(client: httpx.AsyncClient, endpoint: dict[str, str], delivery: Delivery,
                  attempts: int, backoff: float,
                  dead_letter: Callable[[dict[str, Any]], Awaitable[None]]) -> bool:
    """POST until a 2xx answer, at most `attempts` times; then dead-letter it."""
    error = ""
    for attempt in range(attempts):
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json",
                   "X-Salespulse-Timestamp": timestamp,
                   "X-Salespulse-Signature": sign(endpoint["secret"], timestamp, delivery.body),
                   "Idempotency-Key": delivery.transition_id}
        try:
            response = await client.post(endpoint["url"], content=delivery.body, headers=headers)
            if 200 <= response.status_code < 300:
                DELIVERED.inc()
                return True
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        FAILURES.inc()
        log.warning("webhook.failed", url=endpoint["url"], attempt=attempt + 1, error=error)
        if attempt + 1 < attempts:
            await asyncio.sleep(backoff * 2 ** attempt)
    DEAD.inc()
    await dead_letter({"transition_id": delivery.transition_id, "url": endpoint["url"],
                       "attempts": attempts, "error": error,
                       "body": delivery.body.decode()})
    return False
