"""What operators and tools ask: health, Prometheus metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services import progress
from services.api import auth
from services.api.deps import Services
from services.api.problems import problem
from services.settings import Settings

router = APIRouter()


async def _check_kafka(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        return "not configured"
    # Imported here: the API needs Kafka for nothing else, and a process without a broker
    # need not hold it (~3 MB).
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                                request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 3)
        await asyncio.wait_for(admin.list_topics(), 3)
        return "ok"
    finally:
        await admin.close()


async def _progress(services: Services) -> dict[str, Any] | str:
    """The relay's, each projector partition's and the alerter's progress, judged."""
    board = progress.ProgressBoard(services.redis, services.settings.redis_prefix)
    try:
        entries = await asyncio.wait_for(board.read(), 4)
    except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
        return f"failing: {type(exc).__name__}: {exc}"
    return progress.assess(entries, time.time(), services.settings.progress_stall_seconds)


@router.get("/openapi.json", include_in_schema=False,
            dependencies=[Depends(auth.get_principal)])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/healthz", tags=["ops"])
async def healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    checks: dict[str, Any] = {}
    for name, check in (("kafka", lambda: _check_kafka(services.settings)),
                        ("redis", services.redis.ping),
                        ("event_store", lambda: asyncio.to_thread(
                            services.ledger.recorder.max_notification_id))):
        try:
            await asyncio.wait_for(check(), 4)
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
            checks[name] = f"failing: {type(exc).__name__}: {exc}"
    units = await _progress(services)
    if isinstance(units, str):
        checks["progress"] = units
    else:  # every unit moving or caught up, and reporting
        halted = [f"{unit} {u['state']} ({u['behind']} behind, "
                  f"{u['seconds_without_progress']} s without progress)"
                  for unit, u in units.items() if u["state"] != "ok"]
        checks["progress"] = f"failing: {'; '.join(halted)}" if halted else "ok"
    healthy = all(v == "ok" or v == "not configured" for v in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    if isinstance(units, dict):
        body["progress"] = units
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request,
                  authorization: Annotated[str | None, Header()] = None) -> Response:
    # Scraped by Prometheus with its own token, not a tenant's credential.
    services: Services = request.app.state.services
    token = services.settings.metrics_token
    if not token:
        return problem(404, "not-found", "Not found", "set METRICS_TOKEN to expose metrics")
    if not authorization or not hmac.compare_digest(authorization, f"Bearer {token}"):
        answer = problem(401, "unauthenticated", "Credential required or invalid",
                         "metrics want Authorization: Bearer <METRICS_TOKEN>")
        answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer
    await _progress(services)  # salespulse_unit_stalled, as /healthz judges it
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
