"""What every connector shares: the per-tenant mapping, the mapped notification, event ids.

Pure: no I/O. A connector maps one vendor notification to a `Mapped`: the contract events
it stands for (each with an id derived from the notification, so a vendor's retry is
answered `duplicate`), or the reason it cannot be mapped (dead-lettered), or the reason
it is skipped (counted: a field or object salespulse does not track).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from services.importer.changelog_mapping import HUBSPOT, PIPEDRIVE, SALESFORCE

CONNECTORS = ("hubspot", "pipedrive", "salesforce")
DIMENSIONS = ("source", "product")  # what a deal.created carries besides its figures
ACTIVITY_KINDS = ("call", "visit", "email", "meeting", "message", "demo", "other")


class MappingError(ValueError):
    """A mapping the API refuses: `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field, self.message = field_name, message


@dataclass(frozen=True)
class ConnectorMapping:
    """How one tenant's CRM reads as contract events (`PUT /v1/connectors/{name}/mapping`)."""

    account: str | None = None  # HubSpot portalId, Pipedrive company_id: names the tenant
    stages: dict[str, str] = field(default_factory=dict)  # CRM stage value/id -> stage
    won: tuple[str, ...] = ()  # CRM stage values that win the deal
    lost: tuple[str, ...] = ()
    owners: dict[str, str] = field(default_factory=dict)  # CRM owner id -> existing rep id
    team_id: str = "crm"  # the team an owner not in `owners` joins, as rep `<owner id>`
    # When such an owner joins: before any deal, since their first notification may come last.
    reps_since: str = "2000-01-01T00:00:00+00:00"
    default_owner: str = "unassigned"  # the owner of a deal the CRM names none for
    dimensions: dict[str, str] = field(default_factory=dict)  # source/product -> CRM field
    activity_kinds: dict[str, str] = field(default_factory=dict)  # CRM type -> kind
    link_customers: bool = False  # deals and activities name the CRM's company as customer

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["won"], out["lost"] = list(self.won), list(self.lost)
        return out


_ACTIVITY_DEFAULTS = {"call": "call", "meeting": "meeting", "email": "email", "lunch": "meeting",
                      "task": "other", "deadline": "other", "demo": "demo", "visit": "visit"}
DEFAULTS = {
    "hubspot": ConnectorMapping(stages=dict(HUBSPOT.stages), won=HUBSPOT.won, lost=HUBSPOT.lost,
                                activity_kinds=_ACTIVITY_DEFAULTS),
    # Pipedrive closes a deal by its status, not a stage.
    "pipedrive": ConnectorMapping(stages=dict(PIPEDRIVE.stages), activity_kinds=_ACTIVITY_DEFAULTS,
                                  dimensions={"source": "origin"}),
    "salesforce": ConnectorMapping(stages=dict(SALESFORCE.stages), won=SALESFORCE.won,
                                   lost=SALESFORCE.lost, dimensions={"source": "LeadSource"},
                                   activity_kinds={"Call": "call", "Email": "email",
                                                   "Task": "other", "Event": "meeting",
                                                   "ListEmail": "email"}),
}


def _strings(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise MappingError(where, "must be an object of strings")
    out = {}
    for key, value in raw.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise MappingError(f"{where}.{key}", "must be a non-empty string")
        out[str(key)] = value
    return out


def _values(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str | int) for v in raw):
        raise MappingError(where, "must be a list of strings")
    return tuple(str(v) for v in raw)


def parse_mapping(connector: str, raw: Any) -> ConnectorMapping:
    """The connector's defaults with what `raw` overrides (each key replaces the default
    whole); `MappingError` naming the key otherwise."""
    if not isinstance(raw, dict):
        raise MappingError("", "a mapping is a JSON object")
    known = set(ConnectorMapping.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise MappingError(key, f"unknown; known: {', '.join(sorted(known))}")
    base, changes = DEFAULTS[connector], dict[str, Any]()
    for key in ("stages", "owners", "dimensions", "activity_kinds"):
        if key in raw:
            changes[key] = _strings(raw[key], key)
    for key in ("won", "lost"):
        if key in raw:
            changes[key] = _values(raw[key], key)
    for key in ("account", "team_id", "default_owner", "reps_since"):
        if key in raw:
            value = raw[key]
            if key == "account" and value is None:
                changes[key] = None
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise MappingError(key, "must be a non-empty string")
            changes[key] = value.strip()
    if "link_customers" in raw:
        if not isinstance(raw["link_customers"], bool):
            raise MappingError("link_customers", "must be true or false")
        changes["link_customers"] = raw["link_customers"]
    mapping = replace(base, **changes)
    for key, stage in mapping.stages.items():
        if stage in ("won", "lost"):
            raise MappingError(f"stages.{key}", "won and lost are outcomes: list the value "
                                                "in `won` or `lost`")
    for key in mapping.dimensions:
        if key not in DIMENSIONS:
            raise MappingError(f"dimensions.{key}", f"one of {', '.join(DIMENSIONS)}")
    for key, kind in mapping.activity_kinds.items():
        if kind not in ACTIVITY_KINDS:
            raise MappingError(f"activity_kinds.{key}", f"one of {', '.join(ACTIVITY_KINDS)}")
    try:
        parse_time(mapping.reps_since)
    except ValueError:
        raise MappingError("reps_since", "an ISO 8601 time with offset") from None
    return mapping


@dataclass(frozen=True)
class Mapped:
    """One vendor notification, mapped: its events, or why not."""

    key: str  # the notification's own idempotency key, as the vendor names it
    payload: Any
    events: tuple[dict[str, Any], ...] = ()
    dead: str | None = None  # why it cannot be mapped: dead-lettered
    skipped: str | None = None  # why nothing is recorded for it: counted

    def dead_letter(self, reason: str) -> Mapped:
        return replace(self, events=(), dead=reason)


class Unmappable(Exception):
    """What a mapping cannot turn into contract events: the notification is dead-lettered."""


def mapped_stage(mapping: ConnectorMapping, value: Any, refusal: str) -> str:
    """The contract stage the mapping names for a CRM's stage (`refusal`: why there is none)."""
    stage = mapping.stages.get(str(value))
    if stage is None:
        raise Unmappable(refusal)
    return stage


def settle(mapped: Mapped, build: Callable[[], list[dict[str, Any]] | Mapped],
           nothing: str) -> Mapped:
    """The notification with the events `build` maps it to: dead-lettered when it cannot be
    mapped or read, skipped (`nothing`: why) when it maps to no event."""
    try:
        events = build()
    except Unmappable as exc:
        return mapped.dead_letter(str(exc))
    except (TypeError, ValueError, OverflowError) as exc:
        return mapped.dead_letter(f"unreadable value: {exc}")
    if isinstance(events, Mapped):
        return events
    if not events:
        return replace(mapped, skipped=nothing)
    return replace(mapped, events=tuple(events))


def event_id(connector: str, *parts: Any) -> str:
    """The contract id of an event a notification stands for: the same notification (a
    retry) always gives the same id, so the ledger answers `duplicate`."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{connector}-{digest[:40]}"


def envelope(connector: str, key: str, suffix: str, type_: str, at: datetime,
             data: dict[str, Any], actor: str | None = None) -> dict[str, Any]:
    event = {"id": event_id(connector, key, suffix), "type": type_,
             "occurred_at": at.isoformat(), "data": data}
    if actor:
        event["actor"] = actor
    return event


def owner_events(connector: str, mapping: ConnectorMapping,
                 owner: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The rep a CRM owner is, and the `rep.joined` that introduces them when the mapping
    does not name an existing rep for them (one id per owner: only the first counts)."""
    owner = owner or mapping.default_owner
    if owner in mapping.owners:
        return mapping.owners[owner], []
    joined = {"id": event_id(connector, "rep", owner), "type": "rep.joined",
              "occurred_at": mapping.reps_since,
              "data": {"rep_id": owner, "name": owner, "team_id": mapping.team_id}}
    return owner, [joined]


def from_millis(value: Any) -> datetime:
    """An epoch-milliseconds time (a number or a string of digits)."""
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def parse_time(value: Any) -> datetime:
    """ISO 8601 (a `Z` or offset; none means UTC, as the CRMs' APIs send) or epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_millis(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a time: {value!r}")
    if value.isdigit():
        return from_millis(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def close_date(value: Any) -> str:
    """A close date as `YYYY-MM-DD`: from ISO text, epoch ms, or days since 1970 (Kafka
    Connect's logical date)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 1_000_000:
        return date.fromordinal(date(1970, 1, 1).toordinal() + value).isoformat()
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":
        return date.fromisoformat(value).isoformat()
    return parse_time(value).date().isoformat()


def amount(value: Any) -> str:
    """A CRM amount as a decimal string; ValueError if it is not one."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError(f"not an amount: {value!r}")
    text = str(value).strip()
    float(text)  # refuses what is not a number
    if text.startswith("-"):
        raise ValueError(f"a negative amount: {text}")
    return text
