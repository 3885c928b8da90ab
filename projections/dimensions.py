"""What can be filtered on: every rep with their name and current team, and each dimension's
values as they occur in the tenant's facts. Feeds the dashboard's filter lists; pure."""

from __future__ import annotations

from typing import Any

from projections.snapshot import Activity, Deal, Filters, Lead, Order, Snapshot

DIMENSIONS = ("team", "manager", "region", "source", "product", "segment")


def dimensions(snapshot: Snapshot, within: Filters | None = None) -> dict[str, Any]:
    """`reps`: each rep known from `rep.joined` (or only from the deals, leads and activities
    they own), with name and current team/manager/region; and per dimension the sorted
    distinct values seen on reps, deals, leads, orders and activities. `within`: only the
    subjects, and the reps now, that these filters' dimensions keep (a caller's scope)."""
    keep = within.keeps_dims if within else (lambda _dims: True)
    values: dict[str, set[str]] = {name: set() for name in DIMENSIONS}
    rep_ids: set[str] = set(snapshot.records.get("rep", {}))
    everything: list[Deal | Lead | Order | Activity] = [
        *snapshot.deals, *snapshot.leads, *snapshot.orders, *snapshot.activities]
    subjects = [s for s in everything if keep(s.dims)]
    if within:
        rep_ids = {r for r in rep_ids if keep({"rep": r, **snapshot.rep_at(r, None)})}
    for subject in subjects:
        for name in ("rep", *DIMENSIONS):
            value = subject.dims.get(name)
            if value is None:
                continue
            (rep_ids if name == "rep" else values[name]).add(value)
    reps = []
    for rep_id in sorted(rep_ids):
        now = snapshot.rep_at(rep_id, None)
        if not keep({"rep": rep_id, **now}):
            continue  # owned a subject in scope once, but is not in scope now
        for name in ("team", "manager", "region"):
            if now[name] is not None:
                values[name].add(now[name])  # type: ignore[arg-type]
        record = snapshot.records.get("rep", {}).get(rep_id, {})
        reps.append({"id": rep_id, "name": record.get("name"), **now})
    return {"reps": reps, **{name: sorted(v) for name, v in values.items()}}
