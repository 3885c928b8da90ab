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
