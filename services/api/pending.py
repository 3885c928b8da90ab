"""`GET /v1/events/pending`: events held for a subject not known yet, and dropped ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from fastapi import APIRouter
from prometheus_client import Gauge

from events.vocabulary import HELD
from projections.pending import expired, pending
from services.api.auth import WRITE, TenantDep
from services.api.deps import Services, ServicesDep
from services.api.problems import READ_PROBLEMS
from services.readmodels.codec import decode

log = structlog.get_logger("pending")
router = APIRouter(prefix="/v1", tags=["events"], responses=READ_PROBLEMS,
                   dependencies=[WRITE])
PENDING = Gauge("salespulse_events_pending", "Events held for a subject not known yet, and "
                "dropped ones, as last listed or swept", ["tenant", "state"])


@router.get("/events/pending")
async def get_pending(services: ServicesDep, tenant: TenantDep) -> dict[str, Any]:
    """Events accepted as `held` (their subject, or a subject they name, was not known
    yet), per subject waited for, with their age and reason; and the events dropped
    instead of applied, with the reason: held longer than `hold_days` when the subject
    came, or refused by its history then (e.g. dated before the subject's creation).
    A dropped event may be sent again, corrected if need be."""
    answer = pending(await _held(services, tenant), datetime.now(UTC),
                     services.settings.hold_for)
    _gauge(tenant, answer["pending"], answer["dropped"])
    return answer


def _gauge(tenant: str, held: int, dropped: int) -> None:
    PENDING.labels(tenant, "held").set(held)
    PENDING.labels(tenant, "dropped").set(dropped)


async def _held(services: Services, tenant: str) -> dict[str, Any]:
    records: dict[str, Any] = {}
    async for chunk in services.facts.scan(tenant, HELD):
        for raw in chunk:
            record = decode(raw)
            records[record["id"]] = record
    return records


async def drop_expired(services: Services) -> int:
    """Drop the held events of every tenant that waited longer than the setting allows
    (found through the read model, dropped by the ledger, which checks them again)."""
    dropped = 0
    now = datetime.now(UTC)
    for tenant in sorted(await services.facts.tenants()):
        records = await _held(services, tenant)
        _gauge(tenant, sum(len(r.get("pending", {})) for r in records.values()),
               sum(len(r.get("dropped", {})) for r in records.values()))
        waiting = expired(records, now, services.settings.hold_for)
        if waiting:
            drop = partial(services.ledger.drop_expired, tenant, waiting, now=now,
                           hold_for=services.settings.hold_for)
            dropped += await asyncio.get_running_loop().run_in_executor(services.writer, drop)
    return dropped


async def keep_dropping_expired(services: Services) -> None:
    """Every `HOLD_SWEEP_SECONDS`, `drop_expired`; a failure is logged and tried again."""
    while True:
        await asyncio.sleep(services.settings.hold_sweep_seconds)
        try:
            if dropped := await drop_expired(services):
                log.info("pending.expired_dropped", events=dropped)
        except Exception as exc:  # noqa: BLE001 - the store or Redis away: next round
            log.warning("pending.sweep_failed", error=str(exc))
