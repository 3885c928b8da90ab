"""Pipedrive webhooks v2 as contract events. Pure.

A notification is one JSON object: `meta` (`action` create/change/delete, `entity`
deal/activity/person/organization/..., `entity_id`, `company_id`, `timestamp`, `attempt`,
`version` "2.0", ...), `data` (the object after the change; custom fields under
`data.custom_fields`) and `previous` (the changed fields' former values; null on create).
Pipedrive authenticates with the webhook's HTTP basic auth (`http_auth_user`,
`http_auth_password`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.connectors.mapping import (
    ConnectorMapping,
    Mapped,
    Unmappable,
    amount,
    close_date,
    envelope,
    mapped_stage,
    owner_events,
    parse_time,
    settle,
)

NAME = "pipedrive"
# A change's fields, in the order one instant's changes are recorded (the close last).
_DEAL_FIELDS = ("owner_id", "user_id", "value", "expected_close_date", "stage_id", "status")


def notification_key(payload: dict[str, Any]) -> str:
    """The change a notification is, the same on every `attempt`."""
    meta, data = payload.get("meta") or {}, payload.get("data") or {}
    previous = payload.get("previous") or {}
    entity_id = meta.get("entity_id", data.get("id") if isinstance(data, dict) else None)
    changed = ",".join(sorted(previous)) if isinstance(previous, dict) else ""
    return ":".join(str(x) for x in (meta.get("company_id"), meta.get("entity"), entity_id,
                                     meta.get("action"), meta.get("timestamp"), changed))


def _custom(data: dict[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None:
        value = (data.get("custom_fields") or {}).get(key)
    return value.get("value") if isinstance(value, dict) else value


def _time(data: dict[str, Any], key: str, fallback: datetime) -> datetime:
    value = data.get(key)
    return parse_time(value) if value else fallback


def map_webhook(payload: Any, mapping: ConnectorMapping) -> Mapped:
    if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
        return Mapped("?", payload, dead="a notification is an object with `meta`")
    key = notification_key(payload)
    mapped = Mapped(key, payload)
    meta, data = payload["meta"], payload.get("data")
    action, entity = meta.get("action"), meta.get("entity")
    try:
        at = parse_time(meta.get("timestamp"))
    except (TypeError, ValueError):
        return mapped.dead_letter("meta.timestamp is not a time")
    if action == "delete":
        return mapped.dead_letter(f"a deleted {entity} cannot be taken out of the event "
                                  "history") if entity == "deal" else \
            Mapped(key, payload, skipped=f"delete.{entity} is not tracked")
    if not isinstance(data, dict):
        return mapped.dead_letter("data is not an object")
    previous = payload.get("previous") or {}

    def build() -> list[dict[str, Any]] | Mapped:
        if entity == "deal":
            return _deal(key, action, data, previous, at, mapping)
        if entity == "activity":
            return _activity(key, action, data, previous, mapping)
        if entity == "organization" and action == "create":
            return [envelope(NAME, key, "customer", "customer.created",
                             _time(data, "add_time", at),
                             {"customer_id": str(data.get("id", meta.get("entity_id"))),
                              **({"name": data["name"]} if data.get("name") else {})})]
        return Mapped(key, payload, skipped=f"{action}.{entity} is not tracked")

    return settle(mapped, build, f"{action}.{entity} changes nothing tracked")


def _stage(mapping: ConnectorMapping, value: Any) -> str:
    return mapped_stage(mapping, value, f"stage_id {value} is not in the mapping's stages")


def _close(key: str, deal: str, data: dict[str, Any], at: datetime) -> list[dict[str, Any]]:
    status = data.get("status")
    if status == "won":
        won = {"deal_id": deal, **({"amount": amount(data["value"])}
                                   if data.get("value") not in (None, "") else {})}
        return [envelope(NAME, key, "won", "deal.won", _time(data, "won_time", at), won)]
    if status == "lost":
        lost = {"deal_id": deal, **({"reason": str(data["lost_reason"])}
                                    if data.get("lost_reason") else {})}
        return [envelope(NAME, key, "lost", "deal.lost", _time(data, "lost_time", at), lost)]
    if status == "deleted":
        raise Unmappable("a deleted deal cannot be taken out of the event history")
    if status == "open":
        raise Unmappable("a closed deal cannot be reopened in the event history")
    raise Unmappable(f"status {status!r} is not open, won, lost or deleted")


def _deal(key: str, action: str, data: dict[str, Any], previous: dict[str, Any],
          at: datetime, mapping: ConnectorMapping) -> list[dict[str, Any]]:
    deal = str(data["id"])
    owner = data.get("owner_id", data.get("user_id"))
    if action == "create":
        created_at = _time(data, "add_time", at)
        rep, events = owner_events(NAME, mapping, str(owner) if owner else None)
        fields: dict[str, Any] = {"deal_id": deal, "owner_id": rep,
                                  "stage": _stage(mapping, data.get("stage_id"))}
        if data.get("value") not in (None, ""):
            fields["amount"] = amount(data["value"])
        if data.get("currency"):
            fields["currency"] = str(data["currency"])
        if data.get("expected_close_date"):
            fields["expected_close"] = close_date(data["expected_close_date"])
        if mapping.link_customers and data.get("org_id"):
            fields["customer_id"] = str(data["org_id"])
        for dimension, source in mapping.dimensions.items():
            if (value := _custom(data, source)) not in (None, ""):
                fields[dimension] = str(value)
        events.append(envelope(NAME, key, "created", "deal.created", created_at, fields))
        if data.get("status", "open") != "open":
            events.extend(_close(key, deal, data, created_at))
        return events
    if action != "change":
        return []
    changed_at = _time(data, "update_time", at)
    events = []
    for name in _DEAL_FIELDS:
        if name not in previous or (name == "user_id" and "owner_id" in previous):
            continue
        if name in ("owner_id", "user_id"):
            rep, joined = owner_events(NAME, mapping, str(owner) if owner else None)
            events += [*joined, envelope(NAME, key, "owner", "deal.owner_changed", changed_at,
                                         {"deal_id": deal, "owner_id": rep})]
        elif name == "value" and data.get("value") not in (None, ""):
            events.append(envelope(NAME, key, "amount", "deal.amount_changed", changed_at,
                                   {"deal_id": deal, "amount": amount(data["value"])}))
        elif name == "expected_close_date" and data.get("expected_close_date"):
            events.append(envelope(NAME, key, "close", "deal.close_date_changed", changed_at,
                                   {"deal_id": deal,
                                    "expected_close": close_date(data["expected_close_date"])}))
        elif name == "stage_id":
            events.append(envelope(NAME, key, "stage", "deal.stage_changed",
                                   _time(data, "stage_change_time", changed_at),
                                   {"deal_id": deal, "stage": _stage(mapping, data["stage_id"])}))
        elif name == "status":
            events.extend(_close(key, deal, data, changed_at))
    return events


def _duration(value: Any) -> int | None:
    """Pipedrive's `HH:MM` (or `HH:MM:SS`) as minutes."""
    if not isinstance(value, str) or ":" not in value:
        return None
    hours, minutes = value.split(":")[:2]
    return int(hours) * 60 + int(minutes)


def _activity(key: str, action: str, data: dict[str, Any], previous: dict[str, Any],
              mapping: ConnectorMapping) -> list[dict[str, Any]]:
    # An activity counts once it is done: created done, or marked done by a change.
    if not data.get("done") or (action == "change" and "done" not in previous):
        return []
    kind = mapping.activity_kinds.get(str(data.get("type")), "other")
    owner = data.get("owner_id", data.get("user_id"))
    rep, events = owner_events(NAME, mapping, str(owner) if owner else None)
    fields: dict[str, Any] = {"activity_id": str(data["id"]), "kind": kind, "rep_id": rep}
    if data.get("deal_id"):
        fields["deal_id"] = str(data["deal_id"])
    elif mapping.link_customers and data.get("org_id"):
        fields["customer_id"] = str(data["org_id"])
    else:
        raise Unmappable("an activity on no deal (nor, with link_customers, organization) "
                          "has no subject in the contract")
    if (minutes := _duration(data.get("duration"))) is not None:
        fields["duration_min"] = minutes
    done_at = data.get("marked_as_done_time") or data.get("update_time") or data.get("add_time")
    return [*events, envelope(NAME, key, "activity", "activity.logged", parse_time(done_at),
                              fields)]
