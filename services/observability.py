"""Prometheus metrics and request-scoped log context, shared by every process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import Histogram, start_http_server

from services.settings import Settings

REQUEST_SECONDS = Histogram(
    "salespulse_api_request_seconds", "API request latency by route",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def serve_metrics(settings: Settings) -> None:
    """Background processes (relay, projector, alerter) expose /metrics on METRICS_PORT."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)


def instrument(app: FastAPI) -> None:
    """Every request gets an id (the caller's `X-Request-ID` or a new one) that each log line
    of the request carries and the answer returns; its latency is observed per route."""

    @app.middleware("http")
    async def observe(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            route = request.scope.get("route")
            REQUEST_SECONDS.labels(request.method, getattr(route, "path", "unmatched"),
                                   str(status)).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id")
