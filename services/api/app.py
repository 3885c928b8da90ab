"""The query and ingest API: one FastAPI app built from settings."""

from __future__ import annotations

import asyncio
import gc
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services import bootstrap, observability, progress
from services.alerter.settings_log import open_log
from services.api import alert_actions as alert_actions_api
from services.api import alert_settings as alert_settings_api
from services.api import alerts as alerts_api
from services.api import (
    auth,
    bodies,
    connectors,
    documents,
    exports,
    ingest,
    leads,
    performance,
    process,
    views,
)
from services.api import dashboard as dashboard_api
from services.api import forecast as forecast_api
from services.api import keys as keys_api
from services.api import money as money_api
from services.api import pending as pending_api
from services.api.deps import Services, TooLargeForSnapshot
from services.api.problems import problem, problem_responses
from services.readmodels.store import NotBuilt
from services.settings import Settings

log = structlog.get_logger("api")


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


# Python's default (700) collected the youngest generation every few requests, promoting
# the objects of the requests still in flight, which older collections then walked again:
# under 200 clients, 2 s of CPU in 15 s went to the collector (docs/PERFORMANCE.md).
YOUNG_COLLECTION_ALLOCATIONS = 20_000


def settle_heap() -> None:
    """What is alive now (modules, the app, loaded columns) lives as long as the process, so
    the cyclic collector need not walk it again (a full collection walked ~170k objects,
    up to 130 ms of CPU each, under load); the frozen objects are still freed by reference
    counting when dropped. Young collections are made rarer (YOUNG_COLLECTION_ALLOCATIONS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *gc.get_threshold()[1:])


def _parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters `route` takes, its dependencies' included (worked out once and
    kept on the route: routes are not hashable)."""
    known: frozenset[str] | None = getattr(route, "_query_parameters", None)
    if known is not None:
        return known
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(p.alias for p in dependant.query_params)
        pending.extend(dependant.dependencies)
    known = route._query_parameters = frozenset(names)  # type: ignore[attr-defined]
    return known


async def known_parameters(request: Request) -> None:
    """A query parameter a /v1 route does not take is a 422 naming it, as the OpenAPI
    document says (a misspelt filter must not silently widen an answer)."""
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute) \
            or not route.path.startswith("/v1/"):
        return
    unknown = [name for name in request.query_params if name not in _parameters(route)]
    if unknown:
        raise RequestValidationError([{"loc": ("query", name), "type": "extra_forbidden",
                                       "msg": "not a parameter of this route"}
                                      for name in unknown])


def without_null_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never JSON null: an optional parameter's
    schema says only what it is when given (pydantic writes `anyOf: [..., null]`)."""
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", ()) if isinstance(operation, dict) \
                    else ():
                schema = parameter.get("schema", {})
                options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
                if len(options) == 1 and len(schema["anyOf"]) == 2:
                    del schema["anyOf"]
                    parameter["schema"] = {**options[0], **schema}
    return spec


def create_app(settings: Settings | None = None, *, settle: bool = False) -> FastAPI:
    """`settle`: freeze the heap once started (`settle_heap`), for the one app a served
    process holds; a process building many apps (the tests) would keep their cycles."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = bootstrap.redis(settings)
        ledger = await asyncio.to_thread(bootstrap.ledger, settings)
        authenticator = bootstrap.authenticator(settings, ledger, client)
        app.state.services = Services(settings, ledger, client,
                                      bootstrap.fact_store(settings, client), authenticator,
                                      alert_log=await asyncio.to_thread(open_log, settings))
        # Load the column stores now rather than on the first funnel someone asks for.
        warming = asyncio.create_task(app.state.services.columns.warm())
        sweeping = asyncio.create_task(pending_api.keep_dropping_expired(app.state.services))
        # Redis may have lost what the alert settings log holds (a restore, a flush).
        rederiving = asyncio.create_task(alert_settings_api.rederive_all(app.state.services))
        if settle:
            settle_heap()
            warming.add_done_callback(lambda done: None if done.cancelled() else settle_heap())
        yield
        warming.cancel()
        sweeping.cancel()
        rederiving.cancel()
        app.state.services.writer.shutdown(wait=True)
        await client.aclose()
        ledger.close()
        if app.state.services.alert_log is not None:
            app.state.services.alert_log.close()

    # The OpenAPI document is served below, behind a credential like every other route.
    app = FastAPI(title="salespulse", version="1", lifespan=lifespan, openapi_url=None,
                  docs_url=None, redoc_url=None,
                  # Metrics are ours (Prometheus, services/observability.py); FastAPI's own
                  # OpenTelemetry would look up unconfigured providers on every request.
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Real-time sales performance analytics. Metric definitions: "
                              "docs/METRICS.md. Access: docs/SECURITY.md.",
                  # Any parameter or body may be invalid: answered as a problem, not FastAPI's
                  # default validation body; so are the access failures (services/api/auth.py).
                  responses=problem_responses(401, 403, 408, 422, 429),
                  dependencies=[Depends(known_parameters)])
    make_openapi = app.openapi

    def openapi_document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_null_parameters(make_openapi())
        return app.openapi_schema

    app.openapi = openapi_document  # type: ignore[method-assign]
    observability.instrument(app)
    bodies.limit(app, settings.max_body_bytes, settings.body_read_timeout_seconds)
    auth.install(app)
    # Routes are tried in the order they are included, and no request path matches routes of
    # two routers (tests/unit/test_route_order.py): the questions dashboards ask most come
    # first, ahead of writing and administration.
    app.include_router(views.router, dependencies=[auth.READ])
    app.include_router(dashboard_api.router)  # the page is public; its /v1 routes are not
    app.include_router(ingest.router)  # per route: write events, or configure
    app.include_router(pending_api.router)  # for whoever writes events
    app.include_router(connectors.router)  # CRM webhooks (the CRM's own auth) and settings
    app.include_router(alerts_api.router)  # per route: read, or configure webhooks
    app.include_router(alert_settings_api.router)  # routing: admin only
    app.include_router(alert_actions_api.router)  # one-tap links (the token is the credential)
    app.include_router(keys_api.router, dependencies=[auth.ADMINISTER])
    app.include_router(keys_api.identity)
    app.include_router(documents.router, dependencies=[Depends(auth.get_principal)])
    for reading in (forecast_api, leads, process, performance, money_api, exports):
        app.include_router(reading.router, dependencies=[auth.READ])

    @app.get("/openapi.json", include_in_schema=False,
             dependencies=[Depends(auth.get_principal)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.exception_handler(NotBuilt)
    async def rebuilding(_request: Request, _exc: NotBuilt) -> Response:
        answer = problem(503, "rebuilding", "Read models are being rebuilt",
                         "The read models are being rebuilt from the event log; figures "
                         "would be incomplete. Try again in a moment.")
        answer.headers["Retry-After"] = "1"
        return answer

    @app.exception_handler(TooLargeForSnapshot)
    async def too_large(_request: Request, exc: TooLargeForSnapshot) -> Response:
        # Not temporary, so no Retry-After: an operator raises the limit, or waits for the
        # view to move to the column store (the funnel and breakdowns have).
        return problem(503, "too-large-for-this-view", "Too many deals for this view",
                       f"this view still joins every record in memory, and the tenant has "
                       f"{exc.deals:,} deals, more than SNAPSHOT_MAX_DEALS ({exc.limit:,}); "
                       "GET /v1/funnel and GET /v1/breakdown answer at any size")

    @app.exception_handler(RedisError)
    async def read_models_unreachable(_request: Request, exc: RedisError) -> Response:
        log.error("api.redis_unavailable", error=f"{type(exc).__name__}: {exc}")
        answer = problem(503, "read-models-unavailable", "Read models cannot be reached",
                         "The read models' store (Redis) did not answer; try again shortly.")
        answer.headers["Retry-After"] = "1"
        return answer

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        # Every error is a problem body, whichever layer raised it (404, 405, 409, ...).
        phrase = HTTPStatus(exc.status_code).phrase
        answer = problem(exc.status_code, phrase.lower().replace(" ", "-"), phrase,
                         str(exc.detail))
        answer.headers.update(exc.headers or {})
        return answer

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        return problem(422, "invalid-request", "Invalid request",
                       "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        services: Services = app.state.services
        checks: dict[str, Any] = {}
        for name, check in (("kafka", lambda: _check_kafka(settings)),
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

    async def _progress(services: Services) -> dict[str, Any] | str:
        """The relay's, each projector partition's and the alerter's progress, judged."""
        board = progress.ProgressBoard(services.redis, settings.redis_prefix)
        try:
            entries = await asyncio.wait_for(board.read(), 4)
        except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
            return f"failing: {type(exc).__name__}: {exc}"
        return progress.assess(entries, time.time(), settings.progress_stall_seconds)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        # Scraped by Prometheus with its own token, not a tenant's credential.
        token = settings.metrics_token
        if not token:
            return problem(404, "not-found", "Not found", "set METRICS_TOKEN to expose metrics")
        if not authorization or not hmac.compare_digest(authorization, f"Bearer {token}"):
            answer = problem(401, "unauthenticated", "Credential required or invalid",
                             "metrics want Authorization: Bearer <METRICS_TOKEN>")
            answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return answer
        await _progress(app.state.services)  # salespulse_unit_stalled, as /healthz judges it
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
