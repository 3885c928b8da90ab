"""Salesforce Change Data Capture events as contract events. Pure.

One Kafka message is one change event as a Kafka Connect Salesforce CDC source delivers it
in JSON: `ChangeEventHeader` (`entityName`, `recordIds`, `changeType` CREATE / UPDATE /
DELETE / UNDELETE / GAP_*, `changedFields`, `commitTimestamp` epoch ms, `transactionKey`,
`sequenceNumber`, `commitUser`, ...) beside the record's fields: all of them set on a
CREATE, the changed ones on an UPDATE. Dates may come as `YYYY-MM-DD` or as Kafka
Connect's days since 1970.

`Opportunity` is the deal (`StageName`, `Amount`, `CloseDate`, `OwnerId`, `AccountId`,
`IsClosed`/`IsWon`); a completed `Task` and an `Event` are activities on the opportunity
they are about (`WhatId`).
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
    from_millis,
    mapped_stage,
    owner_events,
    parse_time,
    settle,
)

NAME = "salesforce"
OPPORTUNITY_PREFIX = "006"  # Salesforce's key prefix of Opportunity ids
ACCOUNT_PREFIX = "001"


def notification_key(message: dict[str, Any]) -> str:
    header = message.get("ChangeEventHeader") or {}
    return ":".join(str(header.get(k, "")) for k in (
        "entityName", "transactionKey", "sequenceNumber", "changeType", "commitTimestamp"))


def map_change_event(message: Any, mapping: ConnectorMapping) -> Mapped:
    if not isinstance(message, dict) or not isinstance(message.get("ChangeEventHeader"), dict):
        return Mapped("?", message, dead="a change event is an object with ChangeEventHeader")
    key = notification_key(message)
    mapped = Mapped(key, message)
    header = message["ChangeEventHeader"]
    entity, change = header.get("entityName"), header.get("changeType")
    records = header.get("recordIds")
    if not isinstance(records, list) or not records:
        return mapped.dead_letter("ChangeEventHeader.recordIds is empty")
    try:
        at = from_millis(header["commitTimestamp"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return mapped.dead_letter("ChangeEventHeader.commitTimestamp is not epoch milliseconds")
    if isinstance(change, str) and change.startswith("GAP_"):
        return mapped.dead_letter(f"{change}: the change event carries no fields; read the "
                                  "records from Salesforce and send what changed")
    if change in ("DELETE", "UNDELETE"):
        return mapped.dead_letter(f"{change} of {entity}: a record cannot be taken out of (or "
                                  "put back into) the event history")
    changed = set(header.get("changedFields") or ()) if change == "UPDATE" else set(message)

    def build() -> list[dict[str, Any]] | Mapped:
        events: list[dict[str, Any]] = []
        for record in map(str, records):
            if entity == "Opportunity":
                events += _opportunity(key, record, change, message, changed, at, mapping)
            elif entity in ("Task", "Event"):
                events += _activity(key, record, entity, change, message, changed, at, mapping)
            else:
                return Mapped(key, message, skipped=f"{entity} is not tracked")
        return events

    return settle(mapped, build, f"{change} of {entity} changes nothing tracked")


def _outcome(message: dict[str, Any], changed: set[str], mapping: ConnectorMapping) -> str | None:
    stage = message.get("StageName") if "StageName" in changed else None
    if stage in mapping.won or (message.get("IsClosed") is True and message.get("IsWon") is True
                                and {"IsClosed", "IsWon"} & changed):
        return "won"
    if stage in mapping.lost or (message.get("IsClosed") is True
                                 and message.get("IsWon") is False and "IsClosed" in changed):
        return "lost"
    return None


def _opportunity(key: str, deal: str, change: str, message: dict[str, Any],
                 changed: set[str], at: datetime, mapping: ConnectorMapping) -> \
        list[dict[str, Any]]:
    def event(suffix: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        return envelope(NAME, key, f"{deal}:{suffix}", type_, at, {"deal_id": deal, **data})

    outcome = _outcome(message, changed, mapping)
    stage = message.get("StageName")
    events: list[dict[str, Any]] = []
    if change == "CREATE":
        rep, events = owner_events(NAME, mapping, message.get("OwnerId"))
        data: dict[str, Any] = {"owner_id": rep}
        if outcome is None and stage is not None:
            data["stage"] = _stage(mapping, stage)
        if message.get("Amount") is not None:
            data["amount"] = amount(message["Amount"])
        if message.get("CloseDate") is not None:
            data["expected_close"] = close_date(message["CloseDate"])
        if mapping.link_customers and message.get("AccountId"):
            data["customer_id"] = str(message["AccountId"])
        for dimension, field_name in mapping.dimensions.items():
            if message.get(field_name) not in (None, ""):
                data[dimension] = str(message[field_name])
        events.append(event("created", "deal.created", data))
    elif change == "UPDATE":
        if "OwnerId" in changed and message.get("OwnerId"):
            rep, joined = owner_events(NAME, mapping, message["OwnerId"])
            events += [*joined, event("owner", "deal.owner_changed", {"owner_id": rep})]
        if "Amount" in changed and message.get("Amount") is not None:
            events.append(event("amount", "deal.amount_changed",
                                {"amount": amount(message["Amount"])}))
        if "CloseDate" in changed and message.get("CloseDate") is not None:
            events.append(event("close", "deal.close_date_changed",
                                {"expected_close": close_date(message["CloseDate"])}))
        if "StageName" in changed and outcome is None and stage is not None:
            events.append(event("stage", "deal.stage_changed", {"stage": _stage(mapping, stage)}))
    else:
        raise Unmappable(f"changeType {change!r} is not CREATE or UPDATE")
    if outcome == "won":
        won = {"amount": amount(message["Amount"])} if message.get("Amount") is not None else {}
        events.append(event("won", "deal.won", won))
    elif outcome == "lost":
        lost = {"reason": str(message["Loss_Reason__c"])} if message.get("Loss_Reason__c") \
            else {}
        events.append(event("lost", "deal.lost", lost))
    return events


def _stage(mapping: ConnectorMapping, value: Any) -> str:
    return mapped_stage(mapping, value,
                        f"StageName {value!r} is not in the mapping's stages, won or lost")


def _activity(key: str, record: str, entity: str, change: str, message: dict[str, Any],
              changed: set[str], at: datetime, mapping: ConnectorMapping) -> \
        list[dict[str, Any]]:
    if entity == "Task":
        # A task counts once it is completed: created so, or closed by an update.
        done = message.get("IsClosed") is True or message.get("Status") == "Completed"
        if not done or (change == "UPDATE" and not {"IsClosed", "Status"} & changed):
            return []
        kind = mapping.activity_kinds.get(str(message.get("TaskSubtype") or "Task"), "other")
        when = message.get("CompletedDateTime") or at
        seconds = message.get("CallDurationInSeconds")
        minutes = int(seconds) // 60 if isinstance(seconds, int | float) else None
    else:
        if change != "CREATE":
            return []
        kind = mapping.activity_kinds.get("Event", "meeting")
        when = message.get("StartDateTime") or message.get("ActivityDateTime") or at
        minutes = message.get("DurationInMinutes")
    what = str(message.get("WhatId") or "")
    account = str(message.get("AccountId") or "")
    if what.startswith(OPPORTUNITY_PREFIX):
        subject = {"deal_id": what}
    elif mapping.link_customers and (account or what.startswith(ACCOUNT_PREFIX)):
        subject = {"customer_id": account or what}
    else:
        raise Unmappable(f"a {entity} about no opportunity (nor, with link_customers, "
                          "account) has no subject in the contract")
    rep, events = owner_events(NAME, mapping, message.get("OwnerId"))
    data: dict[str, Any] = {"activity_id": record, "kind": kind, "rep_id": rep, **subject}
    if isinstance(minutes, int) and minutes >= 0:
        data["duration_min"] = minutes
    moment = when if isinstance(when, datetime) else parse_time(when)
    return [*events, envelope(NAME, key, f"{record}:activity", "activity.logged", moment, data)]
