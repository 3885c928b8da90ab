"""One JSON POST to a vendor, its answer mapped to success or a `DeliveryError`."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.alerter.channels.errors import DeliveryError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


async def post_json(http: httpx.AsyncClient, url: str, body: dict[str, Any] | bytes, *,
                    idempotency_key: str, headers: dict[str, str] | None = None,
                    vendor: str) -> httpx.Response:
    """POST `body` as UTF-8 JSON; a transport error or a status other than 2xx raises
    (retryable for timeouts, 408, 425, 429 and 5xx). The caller reads the body's own code."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = {"Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key, **(headers or {})}
    try:
        response = await http.post(url, content=content, headers=sent)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{vendor}: {type(exc).__name__}: {exc}", retryable=True) from None
    if not 200 <= response.status_code < 300:
        detail = response.text[:200]
        retryable = response.status_code in RETRYABLE_STATUS or response.status_code >= 500
        raise DeliveryError(f"{vendor}: HTTP {response.status_code} {detail}".strip(), retryable,
                            _retry_after(response.headers.get("Retry-After")))
    return response


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (Slack and Teams send seconds; an HTTP date is ignored)."""
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def body_code(response: httpx.Response, field: str, vendor: str) -> tuple[int, str]:
    """The vendor's own result code and message from a 200 answer (`errcode`/`errmsg`,
    `code`/`msg`); an answer that is not such JSON is a failure worth retrying."""
    try:
        answer = response.json()
        code = int(answer[field])
    except (ValueError, KeyError, TypeError):
        raise DeliveryError(f"{vendor}: unreadable answer {response.text[:200]!r}",
                            retryable=True) from None
    message = str(answer.get("errmsg", answer.get("msg", "")))
    return code, message
