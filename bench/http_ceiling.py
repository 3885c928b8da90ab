"""The HTTP ceiling the query benches compare the API with: the same server (uvicorn on
httptools and uvloop, as `salespulse api` runs) answering every request with fixed bytes,
no framework, no credential, no view. What it cannot do under a load, the API cannot.

`serve` starts it as processes of `python -m uvicorn bench.http_ceiling:app`, with
`HTTP_CEILING_BODY` naming a file of the answer's bytes (the benches pass a real answer of
the route measured, so both send the same size).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.broker import free_port
from services.processes import wait_until_healthy

_BODY = Path(os.environ["HTTP_CEILING_BODY"]).read_bytes() \
    if "HTTP_CEILING_BODY" in os.environ else b"{}"
_HEAD = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"),
                     (b"content-length", str(len(_BODY)).encode())]}
_ANSWER = {"type": "http.response.body", "body": _BODY}


async def app(_scope: dict[str, Any], _receive: Any, send: Any) -> None:
    await send(_HEAD)
    await send(_ANSWER)


@contextmanager
def serve(body: bytes, work: Path, processes: int = 1) -> Iterator[list[tuple[str, int]]]:
    """`processes` ceiling servers, each on its own port, answering `body`: (url, pid) each."""
    (answer := work / "http-ceiling-body").write_bytes(body)
    env = {**os.environ, "HTTP_CEILING_BODY": str(answer)}
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(processes):
            port = free_port()
            started.append((f"http://127.0.0.1:{port}", subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "bench.http_ceiling:app", "--port",
                 str(port), "--log-level", "warning", "--no-access-log", "--lifespan", "off"],
                env=env, cwd=Path(__file__).resolve().parents[1],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for url, process in started:  # it answers /healthz like any other path
            if not wait_until_healthy(url, process, 30):
                raise RuntimeError(f"the HTTP ceiling at {url} did not start")
        yield [(url, process.pid) for url, process in started]
    finally:
        for _, process in started:
            process.terminate()
            process.wait(10)

