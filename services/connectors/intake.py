"""Record mapped notifications through the ledger, one notification at a time in effect.

The ledger stores a batch whole or not at all. A vendor's request holds many unrelated
notifications, and one the ledger refuses (a change dated after the deal closed, say)
must not keep the others out: its notification is dead-lettered with the ledger's
reasons and the rest are recorded again, until the ledger takes what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.connectors.mapping import Mapped
from services.eventstore.ledger import BatchRefused, SalesLedger

OUTCOMES = ("accepted", "held", "duplicate", "dead_lettered", "skipped")


@dataclass(frozen=True)
class Result:
    key: str
    outcome: str  # one of OUTCOMES
    reason: str | None = None
    event_ids: tuple[str, ...] = ()
    # What the ledger refused: its status and (event id, field, message) per error.
    status: int | None = None
    errors: tuple[tuple[str, str, str], ...] = ()


def record(ledger: SalesLedger, tenant: str, mapped: list[Mapped], *, tz: str,
           hold_for: timedelta) -> list[Result]:
    """Each notification's result, in order. Raises what the ledger raises when the event
    store cannot be reached (the sender retries the whole request; ids repeat)."""
    results: list[Result | None] = [None] * len(mapped)
    live = []
    for i, m in enumerate(mapped):
        if m.dead is not None:
            results[i] = Result(m.key, "dead_lettered", m.dead)
        elif not m.events:
            results[i] = Result(m.key, "skipped", m.skipped)
        else:
            live.append(i)
    while live:
        raws: list[Any] = []
        owners: list[int] = []
        for i in live:
            raws.extend(mapped[i].events)
            owners.extend([i] * len(mapped[i].events))
        try:
            outcomes = ledger.record(raws, tenant=tenant, tz=tz, hold_for=hold_for)
        except BatchRefused as refused:
            reasons: dict[int, list[int]] = {}  # notification -> its refused events' indexes
            for n, (index, _error) in enumerate(refused.errors):
                reasons.setdefault(owners[index], []).append(n)
            for i, which in reasons.items():
                errors = [(raws[refused.errors[n][0]], refused.errors[n][1]) for n in which]
                text = "; ".join(f"{_get(raw, 'type')}: {e.field}: {e.message}"
                                 for raw, e in errors)
                results[i] = Result(mapped[i].key, "dead_lettered", text, status=refused.status,
                                    errors=tuple((str(_get(raw, "id")), e.field, e.message)
                                                 for raw, e in errors))
            live = [i for i in live if i not in reasons]
            continue
        statuses: dict[int, list[str]] = {}
        for i, outcome in zip(owners, outcomes, strict=True):
            statuses.setdefault(i, []).append(outcome.status)
        for i in live:
            # The notification's own event comes last (after a rep it introduces).
            results[i] = Result(mapped[i].key, statuses[i][-1],
                                event_ids=tuple(str(_get(e, "id")) for e in mapped[i].events))
        break
    return [r for r in results if r is not None]


def _get(raw: Any, name: str) -> Any:
    return raw.get(name) if isinstance(raw, dict) else None
