"""`GET /v1/events/pending`: events held for a subject not known yet, and dropped ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from prometheus_client import Gauge

from events.ledger import HELD, HOLD_FOR
from projections.pending import pending
from services.api.auth import WRITE, TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS

router = APIRouter(prefix="/v1", tags=["events"], responses=READ_PROBLEMS,
                   dependencies=[WRITE])
PENDING = Gauge("salespulse_events_pending", "Events held for a subject not known yet, as "
                "last listed", ["tenant", "state"])


@router.get("/events/pending")
async def get_pending(services: ServicesDep, tenant: TenantDep) -> dict[str, Any]:
    """Events accepted as `held` (their subject, or a subject they name, was not known
    yet), per subject waited for, with their age and reason; and the events dropped
    instead of applied, with the reason: held longer than `hold_days` when the subject
    came, or refused by its history then (e.g. dated before the subject's creation).
    A dropped event may be sent again, corrected if need be."""
    records: dict[str, Any] = {}
    async for chunk in services.facts.scan(tenant, HELD):
        for raw in chunk:
            record = orjson.loads(raw)
            records[record["id"]] = record
    answer = pending(records, datetime.now(UTC), HOLD_FOR)
    PENDING.labels(tenant, "held").set(answer["pending"])
    PENDING.labels(tenant, "dropped").set(answer["dropped"])
    return answer
