"""Bodies over the limit get 413, whether they declare their length or stream in chunks,
behind the service's own middlewares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request

from services import observability
from services.api.bodies import limit


def _app(max_bytes: int) -> FastAPI:
    app = FastAPI()
    observability.instrument(app)  # the request observer, as in the real app
    limit(app, max_bytes)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}
    return app


async def test_a_body_within_the_limit_passes_and_one_over_it_is_413() -> None:
    transport = httpx.ASGITransport(app=_app(1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.post("/echo", content=b"x" * 1000)).json() == {"bytes": 1000}
        declared = await client.post("/echo", content=b"x" * 1001)
        assert declared.status_code == 413
        assert declared.json()["type"].endswith("/body-too-large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 300

        streamed = await client.post("/echo", content=chunks())
        assert streamed.status_code == 413
        assert "1000 bytes" in streamed.json()["detail"]


def _scope(length: int) -> dict[str, object]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/echo", "raw_path": b"/echo", "root_path": "",
            "query_string": b"", "server": ("api", 80), "client": ("client", 1),
            "headers": [(b"content-length", str(length).encode()),
                        (b"content-type", b"application/octet-stream")]}


async def _call(app: FastAPI, then: dict[str, object] | None) -> list[dict[str, object]]:
    """Send half a body, then `then` (None: nothing more, ever); what the app answered."""
    import asyncio

    parts: list[dict[str, object]] = [{"type": "http.request", "body": b"x" * 10,
                                       "more_body": True}]
    if then is not None:
        parts.append(then)

    async def receive() -> dict[str, object]:
        if parts:
            return parts.pop(0)
        await asyncio.Event().wait()  # a client that stopped sending, still connected
        raise AssertionError("unreachable")

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(_scope(100), receive, send)  # type: ignore[arg-type]
    return sent


async def test_a_body_that_stops_arriving_is_answered_408_after_the_read_timeout() -> None:
    app = FastAPI()
    limit(app, 1000, read_timeout=0.2)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    sent = await _call(app, None)
    assert sent[0]["status"] == 408
    assert b"body-timed-out" in sent[1]["body"]  # type: ignore[operator]


async def test_a_client_gone_before_its_body_is_read_is_no_error_of_the_application() -> None:
    app = _app(1000)
    sent = await _call(app, {"type": "http.disconnect"})  # raises nothing
    assert sent == []


async def test_a_request_without_a_body_waits_for_its_client_as_long_as_it_takes() -> None:
    """A server-sent stream listens for the client going away: no body timeout applies."""
    import asyncio

    from services.api.bodies import BodyLimit

    listened: list[str] = []

    async def stream(_scope: object, receive: object, send: object) -> None:
        # Two listeners at once, as a streaming response and its disconnect watcher do.
        first, second = await asyncio.gather(receive(), receive())  # type: ignore[operator]
        listened.extend([first["type"], second["type"]])
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": []})
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    calls = 0

    async def receive() -> dict[str, object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.3)  # the client leaves long after the body timeout
        return {"type": "http.disconnect"}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {**_scope(0), "method": "GET", "path": "/v1/alerts/stream", "headers": []}
    await BodyLimit(stream, 1000, read_timeout=0.05)(scope, receive, send)  # type: ignore[arg-type]
    assert sorted(listened) == ["http.disconnect", "http.request"]
    assert sent[0]["status"] == 200
