"""Events waiting for their subject, and those dropped: what a CRM integrator looks at
when a figure seems short. Pure: built from the `held` records (projections/facts.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from projections.facts import Record


def pending(records: dict[str, Record], now: datetime, hold_for: timedelta) -> dict[str, Any]:
    """Each subject waited for, with its waiting events (oldest first) and the dropped ones.

    An event held longer than `hold_for` is `expired`: it is dropped, with that reason,
    when its subject arrives, and may be sent again meanwhile to wait anew."""
    waiting: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for key, rec in sorted(records.items()):
        events = [_waiting(event_id, entry, now, hold_for)
                  for event_id, entry in rec.get("pending", {}).items()]
        if events:
            events.sort(key=lambda e: (e["held_at"], e["id"]))
            waiting.append({"waiting_for": key, "events": events})
        dropped += [{"id": event_id, "waiting_for": key, "occurred_at": occurred_at,
                     "type": kind, "held_at": held_at, "reason": reason, "dropped_at": at}
                    for event_id, (occurred_at, kind, held_at, reason, at)
                    in rec.get("dropped", {}).items()]
    every = [e for w in waiting for e in w["events"]]
    dropped.sort(key=lambda e: (e["dropped_at"], e["id"]))
    return {
        "pending": len(every),
        "expired": sum(e["expired"] for e in every),
        "dropped": len(dropped),
        "oldest_held_at": min((e["held_at"] for e in every), default=None),
        "hold_days": hold_for / timedelta(days=1),
        "subjects": waiting,
        "dropped_events": dropped,
    }


def _waiting(event_id: str, entry: list[Any], now: datetime,
             hold_for: timedelta) -> dict[str, Any]:
    occurred_at, kind, held_at, reason = entry
    age = now - datetime.fromisoformat(held_at)
    return {"id": event_id, "type": kind, "occurred_at": occurred_at, "held_at": held_at,
            "age_hours": round(age / timedelta(hours=1), 3), "reason": reason,
            "expired": age > hold_for}


def expired(records: dict[str, Record], now: datetime, hold_for: timedelta) -> list[str]:
    """The subjects waited for (`kind/key`) with an event held longer than `hold_for`."""
    return sorted(key for key, rec in records.items()
                  if any(now - datetime.fromisoformat(held_at) > hold_for
                         for _, _, held_at, _ in rec.get("pending", {}).values()))
