"""Prometheus metrics and request-scoped log context, shared by every process."""

from __future__ import annotations

import time
import uuid

import structlog
from fastapi import FastAPI
from prometheus_client import Histogram, start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.settings import Settings

REQUEST_SECONDS = Histogram(
    "salespulse_api_request_seconds", "API request latency by route",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def serve_metrics(settings: Settings) -> None:
    """Background processes (relay, projector, alerter) expose /metrics on METRICS_PORT."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)


class RequestObserver:
    """Every request gets an id (the caller's `X-Request-ID` or a new one) that each log line
    of the request carries and the answer returns; its latency is observed per route.

    Plain ASGI: Starlette's `@app.middleware("http")` runs the app in a task group behind a
    response stream, several times the cost of this on a request that does little else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((value.decode("latin-1") for name, value in scope["headers"]
                           if name == b"x-request-id"), None) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            route = scope.get("route")
            REQUEST_SECONDS.labels(scope["method"], getattr(route, "path", "unmatched"),
                                   str(status)).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("request_id", "tenant", "role",
                                                     "credential")


def instrument(app: FastAPI) -> None:
    app.add_middleware(RequestObserver)
