"""Every failure answered as an RFC 9457 problem, whichever layer raised it."""

from __future__ import annotations

from http import HTTPStatus

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.columns import Abandoned
from services.api.problems import problem
from services.readmodels.store import NotBuilt

log = structlog.get_logger("api")


async def rebuilding(_request: Request, _exc: Exception) -> Response:
    answer = problem(503, "rebuilding", "Read models are being rebuilt",
                     "The read models are being rebuilt from the event log; figures "
                     "would be incomplete. Try again in a moment.")
    answer.headers["Retry-After"] = "1"
    return answer


async def read_models_unreachable(_request: Request, exc: Exception) -> Response:
    log.error("api.redis_unavailable", error=f"{type(exc).__name__}: {exc}")
    answer = problem(503, "read-models-unavailable", "Read models cannot be reached",
                     "The read models' store (Redis) did not answer; try again shortly.")
    answer.headers["Retry-After"] = "1"
    return answer


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    # Every error is a problem body, whichever layer raised it (404, 405, 409, ...).
    phrase = HTTPStatus(exc.status_code).phrase
    answer = problem(exc.status_code, phrase.lower().replace(" ", "-"), phrase,
                     str(exc.detail))
    answer.headers.update(exc.headers or {})
    return answer


async def invalid_request(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
              for e in exc.errors()]
    return problem(422, "invalid-request", "Invalid request",
                   "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


async def abandoned(request: Request, _exc: Exception) -> Response:
    # Nobody reads it: nginx's "client closed request", for the access log and the metrics.
    log.info("api.abandoned", path=request.url.path)
    return Response(status_code=499)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Abandoned, abandoned)
    app.add_exception_handler(NotBuilt, rebuilding)
    app.add_exception_handler(RedisError, read_models_unreachable)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
