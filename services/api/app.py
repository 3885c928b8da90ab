"""The query and ingest API: one FastAPI app built from settings."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from services import bootstrap, observability
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
    failures,
    ingest,
    leads,
    ops,
    performance,
    process,
    views,
)
from services.api import dashboard as dashboard_api
from services.api import forecast as forecast_api
from services.api import keys as keys_api
from services.api import money as money_api
from services.api import pending as pending_api
from services.api.deps import Services
from services.api.problems import problem_responses
from services.settings import Settings

log = structlog.get_logger("api")


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


def _lifespan(settings: Settings, settle: bool
              ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = bootstrap.redis(settings)
        ledger = await asyncio.to_thread(bootstrap.ledger, settings)
        authenticator = bootstrap.authenticator(settings, ledger, client)
        services = app.state.services = Services(
            settings, ledger, client, bootstrap.fact_store(settings, client), authenticator,
            alert_log=await asyncio.to_thread(open_log, settings))
        # Load the column stores now rather than on the first funnel someone asks for.
        warming = asyncio.create_task(services.columns.warm())
        sweeping = asyncio.create_task(pending_api.keep_dropping_expired(services))
        # Redis may have lost what the alert settings log holds (a restore, a flush).
        rederiving = asyncio.create_task(alert_settings_api.rederive_all(services))
        if settle:
            settle_heap()
            warming.add_done_callback(lambda done: None if done.cancelled() else settle_heap())
        yield
        for task in (warming, sweeping, rederiving):
            task.cancel()
        services.writer.shutdown(wait=True)
        await client.aclose()
        ledger.close()
        if services.alert_log is not None:
            services.alert_log.close()
        if services.outbox is not None:
            services.outbox.close()
    return lifespan


def _include_routers(app: FastAPI) -> None:
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
    app.include_router(ops.router)  # health, metrics, the OpenAPI document


def create_app(settings: Settings | None = None, *, settle: bool = False) -> FastAPI:
    """`settle`: freeze the heap once started (`settle_heap`), for the one app a served
    process holds; a process building many apps (the tests) would keep their cycles."""
    settings = settings or Settings()
    # The OpenAPI document is served by ops.py, behind a credential like every other route.
    app = FastAPI(title="salespulse", version="1", lifespan=_lifespan(settings, settle),
                  openapi_url=None, docs_url=None, redoc_url=None,
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
    _include_routers(app)
    failures.install(app)
    return app
