"""The order of a subject's history: business time, never arrival. Pure.

Every fold (the ledger's checks, the fact records, the alerts) puts a subject's events
in this order, so any arrival order of one history gives the same state. Ties on the
instant are broken by the kind of event (what creates a subject first, what closes it
last) and then by the event id, which the sender chose: deterministic, whatever arrived
first.
"""

from __future__ import annotations

from datetime import UTC, datetime

# Within one instant: creation, then changes, then outcomes.
_FIRST = frozenset({"rep.joined", "customer.created", "lead.created", "deal.created",
                    "order.booked"})
_LAST = frozenset({"deal.won", "deal.lost", "lead.converted", "lead.disqualified"})

EventKey = tuple[datetime, int, str]


def rank(event_type: str) -> int:
    return 0 if event_type in _FIRST else 2 if event_type in _LAST else 1


def event_key(occurred_at: datetime | str, event_type: str, event_id: str) -> EventKey:
    """The sort key of one event in its subject's history (instants compared in UTC)."""
    at = occurred_at if isinstance(occurred_at, datetime) else datetime.fromisoformat(occurred_at)
    return (at.astimezone(UTC), rank(event_type), event_id)


def envelope_key(envelope: dict[str, object]) -> EventKey:
    """`event_key` of a stored envelope (`occurred_at` as ISO 8601 text)."""
    return event_key(str(envelope["occurred_at"]), str(envelope["type"]), str(envelope["id"]))
