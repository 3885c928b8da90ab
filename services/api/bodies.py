"""Request bodies over MAX_BODY_BYTES get 413 before they are read whole: by the declared
Content-Length at once, or, for a chunked body, as soon as the bytes received pass it.
A body whose next part takes longer than BODY_READ_TIMEOUT_SECONDS to arrive gets 408: a
client that stops half-way does not hold its request forever. A client that goes away
before its body is read is logged as that, not as an error of the application."""

from __future__ import annotations

import asyncio

import orjson
import structlog
from fastapi import FastAPI
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.problems import PROBLEM_BASE

log = structlog.get_logger("api")


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _raised(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_raised(e, kind) for e in exc.exceptions)
    return exc.__cause__ is not None and _raised(exc.__cause__, kind)


def _too_large(exc: BaseException) -> bool:
    return _raised(exc, _TooLarge)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout: float = 30.0) -> None:
        self.app, self.max_bytes, self.read_timeout = app, max_bytes, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False
        # A request with no body (a GET, a stream's subscription) has none to wait for: its
        # receive() only ever waits for the client to go away, which may take hours.
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        body_read = not chunked and declared in (None, b"0")

        async def counting_receive() -> Message:
            nonlocal received, body_read
            if body_read:  # afterwards, receive() waits for a disconnect: as long as it takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
                body_read = not message.get("more_body", False)
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
            if _raised(exc, ClientDisconnect):
                log.info("api.client_disconnected", path=scope.get("path"),
                         received_bytes=received)
                return  # nobody to answer
            if started:
                raise
            if _too_large(exc):
                await self._refuse(send)
            elif _raised(exc, _TooSlow):
                log.info("api.body_timed_out", path=scope.get("path"), received_bytes=received)
                await self._answer(send, 408, "body-timed-out", "Request body too slow",
                                   f"no part of the request body arrived within "
                                   f"{self.read_timeout:g} s (BODY_READ_TIMEOUT_SECONDS)")
            else:
                raise

    async def _refuse(self, send: Send) -> None:
        await self._answer(send, 413, "body-too-large", "Request body too large",
                           f"request bodies are limited to {self.max_bytes} bytes "
                           "(MAX_BODY_BYTES)")

    @staticmethod
    async def _answer(send: Send, status: int, kind: str, title: str, detail: str) -> None:
        body = orjson.dumps({"type": PROBLEM_BASE + kind, "title": title, "status": status,
                             "detail": detail})
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def limit(app: FastAPI, max_bytes: int, read_timeout: float = 30.0) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes, read_timeout=read_timeout)
