"""The deals behind the figures, one row each: what a manager exports to check a number or
take it elsewhere. Pure; the same selection as the funnel (cohort by creation)."""

from __future__ import annotations

from typing import Any

from projections.snapshot import Filters, Snapshot

DEAL_COLUMNS = ("deal_id", "status", "stage", "amount", "created_at", "closed_at", "rep",
                "team", "manager", "region", "source", "product", "segment")


def deal_rows(snapshot: Snapshot, filters: Filters) -> list[dict[str, Any]]:
    rows = []
    for deal in sorted(snapshot.select_deals(filters), key=lambda d: (d.created_at, d.id)):
        rows.append({
            "deal_id": deal.id, "status": deal.status,
            "stage": deal.stages[-1][0] if deal.stages else None, "amount": str(deal.amount),
            "created_at": deal.created_at.isoformat(),
            "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
            **{name: deal.dims.get(name) for name in DEAL_COLUMNS[6:]}})
    return rows
