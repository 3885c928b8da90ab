"""The ledger's aggregates: a sales subject with the contract events that built it, and the
events held for a subject not known yet. Their rules are `events/rules.py`'s; these classes
give them eventsourcing's identity, versions and stored form.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from events.parsing import SalesEvent, parse_event
from events.rules import History, State

_NAMESPACE = uuid5(NAMESPACE_URL, "https://salespulse.dev/subjects")


@lru_cache(maxsize=100_000)  # uuid5 hashes with SHA-1: worth remembering for hot subjects
def subject_id(tenant: str, kind: str, key: str) -> UUID:
    # Derived, not random: the same lead id always finds the same aggregate.
    return uuid5(_NAMESPACE, f"{tenant}\x1f{kind}\x1f{key}")


# The event the ledger has just checked, with the envelope it made of it: recording that
# envelope on its aggregate need not parse it again (replaying a stored one still does).
JUST_CHECKED: ContextVar[tuple[dict[str, Any], SalesEvent] | None] = ContextVar(
    "JUST_CHECKED", default=None)


class SalesSubject(Aggregate):
    """One thing the sales organisation tracks, with the contract events that built it."""

    # Its two events declared explicitly (the library's "explicit style"), with the names,
    # topics and attributes the `@event` style gave them, so stored rows read as before;
    # `record` triggers its event directly instead of through the decorator's argument
    # binding and filtering (~5 us an event).
    class Created(Aggregate.Created):
        tenant: str
        kind: str
        key: str
        envelope: dict[str, Any]

    class Recorded(Aggregate.Event):
        kind: str
        key: str
        envelope: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            aggregate._apply(self.envelope)  # type: ignore[attr-defined]

    @staticmethod
    def create_id(tenant: str, kind: str, key: str, envelope: dict[str, Any]) -> UUID:
        return subject_id(tenant, kind, key)

    def __init__(self, tenant: str, kind: str, key: str, envelope: dict[str, Any]) -> None:
        self.tenant, self.kind, self.key = tenant, kind, key
        self.history = History()
        self.seen: set[str] = set()
        self._apply(envelope)

    @property
    def state(self) -> State | None:
        """The subject after all its events, in business time."""
        return self.history.state

    def record(self, kind: str, key: str, envelope: dict[str, Any]) -> None:
        self.trigger_event(self.Recorded, kind=kind, key=key, envelope=envelope)

    def _apply(self, envelope: dict[str, Any]) -> None:
        checked = JUST_CHECKED.get()
        sales_event = (checked[1] if checked and checked[0] is envelope
                       else parse_event(envelope, tenant=envelope["tenant"]))
        self.history.add(sales_event)
        self.seen.add(envelope["id"])




def held_key(kind: str, key: str) -> str:
    return f"{kind}/{key}"


class HeldEvents(SalesSubject):
    """Events that name a subject not known yet, kept in the event store until it arrives.

    Its stored events are envelopes of the internal types `event.held`, `event.released`
    and `event.dropped` (relayed like any other, so the read side lists what waits)."""

    def __init__(self, tenant: str, kind: str, key: str, envelope: dict[str, Any]) -> None:
        self.pending: dict[str, tuple[dict[str, Any], str, str]] = {}  # id: event, reason, at
        self.released: set[str] = set()
        self.dropped: dict[str, str] = {}  # id: reason
        super().__init__(tenant, kind, key, envelope)

    def _apply(self, envelope: dict[str, Any]) -> None:
        data = envelope["data"]
        if envelope["type"] == "event.held":
            event = data["event"]
            self.pending[event["id"]] = (event, data["reason"], envelope["occurred_at"])
            self.dropped.pop(event["id"], None)
        elif envelope["type"] == "event.released":
            for event_id in data["ids"]:
                self.pending.pop(event_id, None)
                self.released.add(event_id)
        elif envelope["type"] == "event.dropped":
            self.pending.pop(data["id"], None)
            self.dropped[data["id"]] = data["reason"]


# Stored rows name their classes by topic. These lived in `events.ledger` until the event
# store's adapters left the domain package; rows written then still say so.
for _aggregate in (SalesSubject, HeldEvents):
    for _cls in (_aggregate, _aggregate.Created, _aggregate.Recorded):
        register_topic(f"events.ledger:{_cls.__qualname__}", _cls)


def holding_envelope(tenant: str, kind: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{kind}/{data.get('id') or data['ids'][0]}/{at.isoformat()}",
            "type": kind, "tenant": tenant, "occurred_at": at.isoformat(), "data": data}
