"""The order of a subject's history: business time, never arrival. Pure.

Every fold (the ledger's checks, the fact records, the alerts) puts a subject's events
in this order, so any arrival order of one history gives the same state. Ties on the
instant are broken by the kind of event (what creates a subject first, what closes it
last) and then by the event id, which the sender chose: deterministic, whatever arrived
first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

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


def compare_instants(a: str, b: str) -> int:
    """-1, 0 or 1 as ISO 8601 instant `a` is before, at or after `b`. Stored times written
    alike (same length, same offset: the common case) compare as text, unparsed."""
    if len(a) == len(b) and a[-6:] == b[-6:]:
        return (a > b) - (a < b)
    x, y = datetime.fromisoformat(a), datetime.fromisoformat(b)
    return (x > y) - (x < y)


def after(occurred_at: str, event_type: str, event_id: str, than: Sequence[Any]) -> bool:
    """Whether the event sorts after `than` (occurred_at, type, id) in its subject's
    history: `event_key` order, without parsing times written alike."""
    order = compare_instants(occurred_at, than[0])
    if order:
        return order > 0
    return (rank(event_type), event_id) > (rank(than[1]), than[2])
