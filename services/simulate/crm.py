"""A contract history as a CRM would have sent it: HubSpot webhook notifications and their
signed requests (`salespulse simulate --as hubspot`, and the connector tests).

Only what HubSpot's deal webhooks carry is rendered: a deal's creation (with the values set
at creation as property changes of the same instant), its stage, amount, close date and
owner changes, and its close as a `dealstage` of `closedwon`/`closedlost`. Activities,
leads, orders and the rest have no HubSpot deal webhook and are left out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from services.connectors.hubspot import MAX_BATCH, signature_v3
from services.connectors.mapping import DEFAULTS

PATH = "/v1/connectors/hubspot"


def _first(mapping: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value, stage in mapping.items():
        out.setdefault(stage, value)
    return out


# Pipeline stage -> the HubSpot default pipeline's stage value that maps to it.
HUBSPOT_STAGES = _first(DEFAULTS["hubspot"].stages)


def _millis(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def _date_millis(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def as_hubspot(events: Iterable[dict[str, Any]], portal_id: int) -> list[dict[str, Any]]:
    """The notifications HubSpot would send for `events` (deal events only), in order."""
    out: list[dict[str, Any]] = []

    def note(event: dict[str, Any], kind: str, prop: str | None = None,
             value: Any = None) -> None:
        n: dict[str, Any] = {"eventId": len(out) + 1, "subscriptionId": 1000 + len(out) % 7,
                             "portalId": portal_id, "appId": 4242,
                             "occurredAt": _millis(event["occurred_at"]),
                             "subscriptionType": kind, "attemptNumber": 0,
                             "objectId": int(hubspot_deal_id(event["data"]["deal_id"])),
                             "changeSource": "CRM"}
        if prop is not None:
            n.update(propertyName=prop, propertyValue=str(value))
        out.append(n)

    for event in events:
        kind, data = event["type"], event["data"]
        if kind == "deal.created":
            note(event, "deal.creation")
            note(event, "deal.propertyChange", "hubspot_owner_id", data["owner_id"])
            if data.get("stage"):
                note(event, "deal.propertyChange", "dealstage", HUBSPOT_STAGES[data["stage"]])
            if data.get("amount") is not None:
                note(event, "deal.propertyChange", "amount", data["amount"])
            if data.get("expected_close"):
                note(event, "deal.propertyChange", "closedate",
                     _date_millis(data["expected_close"]))
        elif kind == "deal.stage_changed":
            note(event, "deal.propertyChange", "dealstage", HUBSPOT_STAGES[data["stage"]])
        elif kind == "deal.amount_changed":
            note(event, "deal.propertyChange", "amount", data["amount"])
        elif kind == "deal.owner_changed":
            note(event, "deal.propertyChange", "hubspot_owner_id", data["owner_id"])
        elif kind == "deal.close_date_changed":
            note(event, "deal.propertyChange", "closedate", _date_millis(data["expected_close"]))
        elif kind == "deal.won":
            if data.get("amount") is not None:
                note(event, "deal.propertyChange", "amount", data["amount"])
            note(event, "deal.propertyChange", "dealstage", "closedwon")
        elif kind == "deal.lost":
            note(event, "deal.propertyChange", "dealstage", "closedlost")
    return out


def hubspot_deal_id(deal_id: str) -> str:
    """The objectId `as_hubspot` gives a contract deal id, as the connector records it."""
    digits = "".join(c for c in deal_id if c.isdigit())
    if not digits:
        raise ValueError(f"deal id {deal_id!r} has no digits to make a HubSpot objectId of")
    return str(int(digits))


def batches(notifications: list[dict[str, Any]], size: int = MAX_BATCH) -> \
        Iterator[list[dict[str, Any]]]:
    for start in range(0, len(notifications), size):
        yield notifications[start:start + size]


def signed_request(url: str, secret: str, batch: list[dict[str, Any]],
                   now_ms: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers HubSpot sends a batch with (signature v3)."""
    body = orjson.dumps(batch)
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    return body, {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": timestamp,
                  "X-HubSpot-Signature-v3": signature_v3(secret, "POST", url, body, timestamp)}


def post_hubspot(base_url: str, secret: str, notifications: list[dict[str, Any]],
                 client: httpx.Client | None = None) -> dict[str, int]:
    """POST the notifications as HubSpot does, 100 a request; the outcomes counted."""
    url = base_url.rstrip("/") + PATH
    counts: dict[str, int] = {}
    http = client or httpx.Client(timeout=60)
    try:
        for batch in batches(notifications):
            body, headers = signed_request(url, secret, batch)
            response = http.post(url, content=body, headers=headers)
            response.raise_for_status()
            for result in response.json()["results"]:
                counts[result["outcome"]] = counts.get(result["outcome"], 0) + 1
    finally:
        if client is None:
            http.close()
    return counts


def simulate_hubspot(base_url: str, events: list[dict[str, Any]], portal_id: int, secret: str,
                     admin: dict[str, str] | None = None) -> dict[str, int]:
    """The demo: with an admin credential, connect the tenant to the portal (mapping
    `account`, app secret), then post the history's deals as HubSpot's webhooks."""
    with httpx.Client(base_url=base_url, timeout=60, headers=admin or {}) as client:
        if admin:
            client.put(PATH + "/mapping", json={"account": str(portal_id)}).raise_for_status()
            client.put(PATH + "/credentials", json={"app_secret": secret}).raise_for_status()
        return post_hubspot(base_url, secret, as_hubspot(events, portal_id), client)


# Pipeline stage -> the default Pipedrive stage id that maps to it; and the Salesforce value.
PIPEDRIVE_STAGES = {stage: int(value) for stage, value in _first(DEFAULTS["pipedrive"].stages)
                    .items()}
SALESFORCE_STAGES = _first(DEFAULTS["salesforce"].stages)
PIPEDRIVE_TYPES = {"call": "call", "meeting": "meeting", "email": "email", "visit": "meeting",
          "demo": "meeting", "message": "email", "other": "task"}


def _utc(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_pipedrive(events: Iterable[dict[str, Any]], company_id: int) -> list[dict[str, Any]]:
    """The webhooks v2 notifications Pipedrive would send for `events`' deals and their
    done activities, in order (each `data` is the deal after the change)."""
    deals: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []

    def note(action: str, entity: str, data: dict[str, Any], previous: Any, at: str) -> None:
        out.append({"meta": {"action": action, "entity": entity, "entity_id": str(data["id"]),
                             "company_id": str(company_id), "id": f"{len(out) + 1}",
                             "correlation_id": f"corr-{len(out) + 1}", "is_bulk_edit": False,
                             "timestamp": at, "type": "general", "user_id": "1",
                             "version": "2.0", "webhook_id": "1", "webhook_owner_id": "1",
                             "change_source": "app", "attempt": 1,
                             "host": "demo.pipedrive.com"},
                    "data": dict(data), "previous": previous})

    for event in events:
        kind, data, at = event["type"], event["data"], _utc(event["occurred_at"])
        if kind == "activity.logged" and data.get("deal_id") in deals:
            note("create", "activity", {
                "id": int(hubspot_deal_id(data["activity_id"])),
                "type": PIPEDRIVE_TYPES[data["kind"]], "owner_id": data["rep_id"], "done": True,
                "deal_id": deals[data["deal_id"]]["id"], "add_time": at,
                "marked_as_done_time": at, "update_time": at}, None, at)
            continue
        if not kind.startswith("deal.") or (kind != "deal.created"
                                            and data["deal_id"] not in deals):
            continue
        if kind == "deal.created":
            deal = deals[data["deal_id"]] = {
                "id": int(hubspot_deal_id(data["deal_id"])), "owner_id": data["owner_id"],
                "value": data.get("amount"), "currency": data.get("currency"),
                "stage_id": PIPEDRIVE_STAGES[data.get("stage") or "prospecting"],
                "status": "open", "add_time": at, "update_time": at,
                "expected_close_date": data.get("expected_close"), "won_time": None,
                "lost_time": None, "lost_reason": None, "origin": data.get("source"),
                "custom_fields": {}}
            note("create", "deal", deal, None, at)
            continue
        deal = deals[data["deal_id"]]
        change = {"deal.stage_changed": {"stage_id": PIPEDRIVE_STAGES.get(data.get("stage", ""))},
                  "deal.amount_changed": {"value": data.get("amount")},
                  "deal.owner_changed": {"owner_id": data.get("owner_id")},
                  "deal.close_date_changed": {"expected_close_date": data.get("expected_close")},
                  "deal.won": {"status": "won", "won_time": at,
                               **({"value": data["amount"]} if data.get("amount") else {})},
                  "deal.lost": {"status": "lost", "lost_time": at,
                                "lost_reason": data.get("reason")}}.get(kind)
        if change is None:
            continue
        previous = {k: deal.get(k) for k in change if k in ("stage_id", "value", "owner_id",
                                                            "expected_close_date", "status")}
        deal.update(change, update_time=at)
        if kind == "deal.stage_changed":
            deal["stage_change_time"] = at
        note("change", "deal", deal, previous, at)
    return out


def as_salesforce_cdc(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Opportunity change events Salesforce CDC would deliver for `events`' deals."""
    out: list[dict[str, Any]] = []

    def note(change: str, deal_id: str, at: str, fields: dict[str, Any]) -> None:
        out.append({"ChangeEventHeader": {
            "entityName": "Opportunity", "recordIds": [f"006{hubspot_deal_id(deal_id):0>15}"],
            "changeType": change, "changeOrigin": "com/salesforce/api/soap/60.0",
            "transactionKey": f"tx-{len(out) + 1}", "sequenceNumber": 1,
            "commitTimestamp": _millis(at), "commitNumber": len(out) + 1,
            "commitUser": "005000000000001", "changedFields": [] if change == "CREATE"
            else sorted(fields), "diffFields": [], "nulledFields": []}, **fields})

    for event in events:
        kind, data, at = event["type"], event["data"], event["occurred_at"]
        if kind == "deal.created":
            note("CREATE", data["deal_id"], at, {
                "StageName": SALESFORCE_STAGES[data.get("stage") or "prospecting"],
                "Amount": float(data["amount"]) if data.get("amount") else None,
                "CloseDate": data.get("expected_close"), "OwnerId": data["owner_id"],
                "LeadSource": data.get("source"), "IsClosed": False, "IsWon": False})
        elif kind == "deal.stage_changed":
            note("UPDATE", data["deal_id"], at, {"StageName": SALESFORCE_STAGES[data["stage"]]})
        elif kind == "deal.amount_changed":
            note("UPDATE", data["deal_id"], at, {"Amount": float(data["amount"])})
        elif kind == "deal.owner_changed":
            note("UPDATE", data["deal_id"], at, {"OwnerId": data["owner_id"]})
        elif kind == "deal.close_date_changed":
            note("UPDATE", data["deal_id"], at, {"CloseDate": data["expected_close"]})
        elif kind in ("deal.won", "deal.lost"):
            won = kind == "deal.won"
            note("UPDATE", data["deal_id"], at, {
                "StageName": "Closed Won" if won else "Closed Lost", "IsClosed": True,
                "IsWon": won, **({"Amount": float(data["amount"])}
                                 if won and data.get("amount") else {})})
    return out
