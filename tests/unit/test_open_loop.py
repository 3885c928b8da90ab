"""The open-loop bench's client: a kept-alive connection the server closed while it sat idle
is retried once on a new one (the request never reached the server); any other failure
counts as one."""

from __future__ import annotations

import asyncio

import pytest

from bench.open_loop import _ask, _Failed, _Pool

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def _server(answers_per_connection: int | None) -> tuple[asyncio.Server, list[int]]:
    """Answers each request with OK, then closes a connection after it has answered
    `answers_per_connection` (None: never; 0: closes before answering at all)."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        while answers_per_connection is None or answered < answers_per_connection:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(OK)
            await writer.drain()
            answered += 1
            served.append(answered)
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), served


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_a_connection_closed_while_idle_is_retried_on_a_new_one() -> None:
    async def scenario() -> None:
        server, served = await _server(answers_per_connection=1)
        pool = _Pool([_url(server)], limit=4)
        assert (await _ask(pool, "", "/v1/funnel", {}) or b"").startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.05)  # the server has closed the kept-alive connection
        assert (await _ask(pool, "", "/v1/funnel", {}) or b"").startswith(b"HTTP/1.1 200")
        assert served == [1, 1]  # each answered on its own connection
        pool.close()
        server.close()

    asyncio.run(scenario())


def test_a_new_connection_closed_before_answering_is_a_failure() -> None:
    async def scenario() -> None:
        server, _ = await _server(answers_per_connection=0)
        pool = _Pool([_url(server)], limit=4)
        with pytest.raises(_Failed):
            await _ask(pool, "", "/v1/funnel", {})
        pool.close()
        server.close()

    asyncio.run(scenario())
