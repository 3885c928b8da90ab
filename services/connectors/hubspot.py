"""HubSpot webhooks (the app's webhook subscriptions) as contract events. Pure.

HubSpot POSTs a JSON array of up to 100 notifications, each: `eventId`, `subscriptionId`,
`portalId`, `appId`, `occurredAt` (epoch ms), `subscriptionType` (`deal.creation`,
`deal.propertyChange`, `deal.deletion`, ...), `attemptNumber`, `objectId`, `changeSource`,
and for property changes `propertyName` and `propertyValue` (always a string). Requests
carry `X-HubSpot-Signature-v3` and `X-HubSpot-Request-Timestamp` (`verify_v3`).

A creation carries no properties: HubSpot sends the values set at creation as property
changes of the same instant. So `deal.creation` is `deal.created` with the mapping's
`default_owner` in the first stage, and each property change (`dealstage`, `amount`,
`closedate`, `hubspot_owner_id`) the contract change it is; the ledger orders a creation
before the changes of its own instant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from services.connectors.mapping import (
    ConnectorMapping,
    Mapped,
    amount,
    close_date,
    envelope,
    from_millis,
    owner_events,
)

NAME = "hubspot"
MAX_BATCH = 100
MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject a timestamp older than 5 minutes
# HubSpot's v3 rules: these URL-encoded characters of the request URI are decoded before
# signing (and no others).
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def _decode_uri(uri: str) -> str:
    out, i = [], 0
    while i < len(uri):
        chunk = uri[i:i + 3].upper()
        if uri[i] == "%" and chunk in _DECODED:
            out.append(_DECODED[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(app secret, method + decoded URI + body + timestamp))."""
    message = method.encode() + _decode_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str | None,
              signature: str | None, now_ms: int) -> str | None:
    """None if the request is HubSpot's; else why not."""
    if not signature or not timestamp:
        return "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required"
    if not timestamp.isdigit():
        return "X-HubSpot-Request-Timestamp is not epoch milliseconds"
    if now_ms - int(timestamp) > MAX_AGE_MS:
        return "X-HubSpot-Request-Timestamp is older than 5 minutes"
    expected = signature_v3(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected, signature):
        return "X-HubSpot-Signature-v3 does not match the request"
    return None


def notification_key(n: dict[str, Any]) -> str:
    """HubSpot says `eventId` alone may repeat; with the portal, type, object, property
    and time it names one change, and a retry (`attemptNumber` + 1) keeps it."""
    return ":".join(str(n.get(k, "")) for k in (
        "portalId", "subscriptionType", "objectId", "propertyName", "occurredAt", "eventId"))


def map_notification(n: Any, mapping: ConnectorMapping) -> Mapped:
    if not isinstance(n, dict):
        return Mapped("?", n, dead="a notification is a JSON object")
    key = notification_key(n)
    mapped = Mapped(key, n)
    kind = n.get("subscriptionType")
    if not isinstance(kind, str) or n.get("objectId") in (None, ""):
        return mapped.dead_letter("subscriptionType and objectId are required")
    try:
        at = from_millis(n["occurredAt"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return mapped.dead_letter("occurredAt is not epoch milliseconds")
    deal = str(n["objectId"])

    def event(type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return envelope(NAME, key, type_, type_, at, {"deal_id": deal, **data})

    if kind == "deal.creation":
        rep, joined = owner_events(NAME, mapping, None)
        return Mapped(key, n, (*joined, event("deal.created", {"owner_id": rep})))
    if kind == "company.creation":
        return Mapped(key, n, (envelope(NAME, key, "customer", "customer.created", at,
                                        {"customer_id": deal}),))
    if kind == "deal.deletion":
        return mapped.dead_letter("a deleted deal cannot be taken out of the event history; "
                                  "mark it lost in HubSpot instead")
    if kind != "deal.propertyChange":
        return Mapped(key, n, skipped=f"{kind} is not tracked")
    prop, value = n.get("propertyName"), n.get("propertyValue")
    if prop == "dealstage":
        if value in mapping.won:
            return Mapped(key, n, (event("deal.won", {}),))
        if value in mapping.lost:
            return Mapped(key, n, (event("deal.lost", {}),))
        if value not in mapping.stages:
            return mapped.dead_letter(f"dealstage {value!r} is not in the mapping's stages, "
                                      "won or lost")
        return Mapped(key, n, (event("deal.stage_changed", {"stage": mapping.stages[value]}),))
    if prop == "hubspot_owner_id":
        rep, joined = owner_events(NAME, mapping, value or None)
        return Mapped(key, n, (*joined, event("deal.owner_changed", {"owner_id": rep})))
    if prop in ("amount", "closedate") and value in (None, ""):
        return Mapped(key, n, skipped=f"{prop} cleared: a value cannot be cleared")
    if prop == "amount":
        try:
            return Mapped(key, n, (event("deal.amount_changed", {"amount": amount(value)}),))
        except ValueError as exc:
            return mapped.dead_letter(f"amount: {exc}")
    if prop == "closedate":
        try:
            expected = close_date(value)
        except (ValueError, OverflowError):
            return mapped.dead_letter(f"closedate {value!r} is not a date")
        return Mapped(key, n, (event("deal.close_date_changed", {"expected_close": expected}),))
    return Mapped(key, n, skipped=f"property {prop} is not tracked")


def map_batch(batch: list[Any], mapping: ConnectorMapping) -> list[Mapped]:
    return [map_notification(n, mapping) for n in batch]
