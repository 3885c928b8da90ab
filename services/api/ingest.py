"""Writing: `POST /v1/events`, `POST /v1/events/batch`, `PUT /v1/pipeline`, `PUT /v1/scoring`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter as Tally
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import structlog
from eventsourcing.persistence import IntegrityError, PersistenceError
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter

from events.contract import (
    EVENT_TYPES,
    Envelope,
    PipelineConfigured,
    ScoringConfigured,
    json_schema,
)
from services.api.auth import ADMINISTER, WRITE, TenantDep, get_principal
from services.api.deps import Services, ServicesDep
from services.api.problems import problem, problem_responses
from services.eventstore.ledger import BatchRefused, OnUnknown, Outcome, StoreUnavailable
from services.messages import gc_paused

router = APIRouter(prefix="/v1", tags=["events"])
log = structlog.get_logger("ingest")
LOGGED_REFUSALS = 20  # per request: a 10,000-event batch of garbage must not flood the log
# Malformed JSON, conflicts, too large a batch, a busy or unreachable event store.
_WRITE_PROBLEMS = problem_responses(400, 409, 413, 503)
INGESTED = Counter("salespulse_ingested_events_total", "Events answered by the ingest API",
                   ["status"])

# The envelope as the contract checks it (the `data` of each type: GET /v1/schemas/{type}).
_ENVELOPE = {**Envelope.model_json_schema(), "description": "A contract event; its `data` "
             "by type: GET /v1/schemas/{type}"}
_ENVELOPE["properties"] = {**_ENVELOPE["properties"],
                           "type": {"type": "string", "enum": list(EVENT_TYPES)},
                           "data": {"type": "object"}}
_EVENT_BODY = {"content": {"application/json": {"schema": _ENVELOPE}}}
_BATCH_BODY = {"content": {"application/json": {"schema": {
    "type": "array", "maxItems": 10_000, "items": _ENVELOPE}}}}


# CONTRACT.md, "Order of arrival": what a sender wants done with an id not known yet.
UnknownDep = Annotated[OnUnknown, Query(
    description="An event naming a subject not known yet: `hold` it until the subject "
                "arrives (answered `held`), or `refuse` it (422) as an interactive front end "
                "wants, where a typo must show at once")]


def _recorded(services: Services, tenant: str, raws: list[Any],
              unknown: OnUnknown = "hold") -> list[Outcome]:
    # No cyclic collection during a batch: it allocates thousands of acyclic objects that the
    # collector would walk again and again, with every cached subject (~12% of the writer's
    # CPU); collection resumes after the batch, as in the projector.
    with gc_paused():
        return services.ledger.record(raws, tenant=tenant, tz=services.settings.tenant_timezone,
                                      unknown=unknown, hold_for=services.settings.hold_for)


async def _record(services: Services, tenant: str, raws: list[Any],
                  unknown: OnUnknown = "hold") -> list[Outcome] | Response:
    loop = asyncio.get_running_loop()
    try:
        outcomes = await loop.run_in_executor(
            services.writer, _recorded, services, tenant, raws, unknown)
    except BatchRefused as refused:
        INGESTED.labels("refused").inc(len(raws))
        errors = [{"index": i, "event_id": _id_of(raws[i]), "field": e.field, "message": e.message}
                  for i, e in refused.errors]
        title = "Conflicting event" if refused.status == 409 else "Invalid event"
        for error in errors[:LOGGED_REFUSALS]:  # what support looks up by the front end's id
            log.warning("ingest.refused", status=refused.status, batch_size=len(raws), **error)
        return problem(refused.status, "invalid-event", title,
                       f"{len(refused.errors)} problem(s); nothing of this request was stored",
                       errors)
    except (StoreUnavailable, IntegrityError) as exc:
        return problem(503, "store-busy", "Event store busy", str(exc))
    except PersistenceError as exc:
        return problem(503, "store-unavailable", "Event store unavailable",
                       f"the event store cannot be reached; retry later ({type(exc).__name__})")
    for status, count in Tally(o.status for o in outcomes).items():
        INGESTED.labels(status).inc(count)  # once per status: labels() takes a lock
    if logging.getLogger("ingest").isEnabledFor(logging.DEBUG):  # ids of a whole batch
        log.debug("ingest.stored", event_ids=[o.id for o in outcomes],
                  statuses=[o.status for o in outcomes])
    return outcomes


def _id_of(raw: Any) -> Any:
    return raw.get("id") if isinstance(raw, dict) else None


async def _json(request: Request) -> Any | Response:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return problem(400, "malformed-json", "Malformed JSON", str(exc))


@router.post("/events", status_code=202, dependencies=[WRITE], responses=_WRITE_PROBLEMS,
             openapi_extra={"requestBody": _EVENT_BODY})
async def post_event(request: Request, services: ServicesDep, tenant: TenantDep,
                     unknown: UnknownDep = "hold") -> Response:
    raw = await _json(request)
    if isinstance(raw, Response):
        return raw
    outcomes = await _record(services, tenant, [raw], unknown)
    if isinstance(outcomes, Response):
        return outcomes
    return JSONResponse({"id": outcomes[0].id, "status": outcomes[0].status}, status_code=202)


@router.post("/events/batch", status_code=202, dependencies=[WRITE], responses=_WRITE_PROBLEMS,
             openapi_extra={"requestBody": _BATCH_BODY})
async def post_batch(request: Request, services: ServicesDep, tenant: TenantDep,
                     unknown: UnknownDep = "hold") -> Response:
    raws = await _json(request)
    if isinstance(raws, Response):
        return raws
    if not isinstance(raws, list):
        return problem(422, "invalid-batch", "Invalid batch", "a batch is a JSON array of events",
                       [{"index": None, "field": "", "message": "expected an array"}])
    limit = services.settings.max_batch_events
    if len(raws) > limit:
        return problem(413, "batch-too-large", "Batch too large",
                       f"{len(raws)} events; at most {limit} in one batch")
    outcomes = await _record(services, tenant, raws, unknown)
    if isinstance(outcomes, Response):
        return outcomes
    return JSONResponse({"results": [{"id": o.id, "status": o.status} for o in outcomes]},
                        status_code=202)


@router.put("/pipeline", status_code=202, dependencies=[ADMINISTER],
            responses=problem_responses(400, 409, 503))
async def put_pipeline(pipeline: PipelineConfigured, services: ServicesDep,
                       tenant: TenantDep) -> Response:
    """Replace the tenant's ordered open stages (stored as a `pipeline.configured` event)."""
    raw = {"id": str(uuid.uuid4()), "type": "pipeline.configured",
           "occurred_at": datetime.now(UTC).isoformat(),
           "data": pipeline.model_dump(mode="json", exclude_none=True)}
    outcomes = await _record(services, tenant, [raw])
    if isinstance(outcomes, Response):
        return outcomes
    return JSONResponse({"id": raw["id"], "status": "accepted", "stages": pipeline.stages},
                        status_code=202)


@router.put("/scoring", status_code=202, dependencies=[ADMINISTER],
            responses=problem_responses(400, 409, 503))
async def put_scoring(scoring: ScoringConfigured, services: ServicesDep,
                      tenant: TenantDep) -> Response:
    """Set the weights of the rep score (results, process, customer; they must sum to 100,
    or to 1). Stored as a `scoring.configured` event; the default is 60/30/10."""
    data: dict[str, Any] = scoring.model_dump(mode="json")
    raw = {"id": str(uuid.uuid4()), "type": "scoring.configured",
           "occurred_at": datetime.now(UTC).isoformat(), "data": data}
    outcomes = await _record(services, tenant, [raw])
    if isinstance(outcomes, Response):
        return outcomes
    return JSONResponse({"id": raw["id"], "status": "accepted", **data}, status_code=202)


@router.get("/schemas", tags=["schemas"], dependencies=[Depends(get_principal)])
async def list_schemas() -> dict[str, list[str]]:
    return {"types": list(EVENT_TYPES)}


@router.get("/schemas/{event_type}", tags=["schemas"], responses=problem_responses(404),
            dependencies=[Depends(get_principal)])
async def get_schema(event_type: str) -> Response:
    if event_type not in EVENT_TYPES:
        return problem(404, "unknown-type", "Unknown event type",
                       f"{event_type!r} is not an event type; see GET /v1/schemas")
    return JSONResponse(json_schema(event_type))
