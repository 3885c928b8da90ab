"""Arrival orders a real CRM feed delivers: some events late, some before their subject.

Pure: a history (sorted by business time) in, the same events in another order out.
The benchmark and the tests send a history this way to measure and pin what late and
early events cost and change (CONTRACT.md, "Order of arrival").
"""

from __future__ import annotations

import bisect
import random
from datetime import datetime, timedelta
from typing import Any

from events.parsing import parse_event
from events.rules import CREATES, subject_of


def late_and_early(events: list[dict[str, Any]], seed: int, *, late: float = 0.2,
                   max_delay: timedelta = timedelta(days=3), early: float = 0.05,
                   tenant: str = "default") -> list[dict[str, Any]]:
    """`events` (in business-time order) as a feed delivers them: a share `late` of them
    arrives up to `max_delay` (business time) after its moment, and a share `early` of
    the events that belong to a subject arrives before that subject's creation."""
    rng = random.Random(seed)
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    created_at: dict[tuple[str, str], int] = {}
    # Where each event arrives: a position in the sorted history, then a tie-breaker.
    slots: list[tuple[float, float, int]] = []
    for index, raw in enumerate(events):
        subject = subject_of(parse_event(raw, tenant=tenant))
        creates = CREATES.get(raw["type"]) == subject.kind
        if creates:
            created_at[subject.kind, subject.key] = index
        draw = rng.random()
        position = float(index)
        if draw < late:
            arrives = times[index] + max_delay * rng.random()
            position = float(bisect.bisect_right(times, arrives, lo=index))
        elif draw < late + early and not creates and (subject.kind, subject.key) in created_at:
            position = created_at[subject.kind, subject.key] - 0.5  # just before its creation
        slots.append((position, rng.random(), index))
    return [events[index] for _, _, index in sorted(slots)]
