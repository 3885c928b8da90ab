"""Request bodies over MAX_BODY_BYTES get 413 before they are read whole: by the declared
Content-Length at once, or, for a chunked body, as soon as the bytes received pass it."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import PROBLEM_BASE


class _TooLarge(Exception):
    pass


def _too_large(exc: BaseException) -> bool:
    if isinstance(exc, _TooLarge):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_too_large(e) for e in exc.exceptions)
    return exc.__cause__ is not None and _too_large(exc.__cause__)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception as exc:
            # A middleware running the app in a task group (Starlette's BaseHTTPMiddleware;
            # none of ours now) hands it back in an ExceptionGroup.
            if started or not _too_large(exc):
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps({
            "type": PROBLEM_BASE + "body-too-large", "title": "Request body too large",
            "status": 413, "detail": f"request bodies are limited to {self.max_bytes} bytes "
                                     "(MAX_BODY_BYTES)"})
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
