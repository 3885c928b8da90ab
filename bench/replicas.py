"""API processes for the query benches: replicas on one prefix, each on its own port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen, TimeoutExpired

from bench.query_load import process_memory_mb
from services.broker import free_port
from services.processes import spawn, wait_until_healthy


class Api:
    """One `salespulse api` process on the bench's prefix."""

    def __init__(self, env: dict[str, str], log: Path, code: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        begun = time.perf_counter()
        self.process: Popen[bytes] = spawn(["api", "--port", str(self.port)], env, log, code)
        if not wait_until_healthy(self.url, self.process, 60):
            raise RuntimeError(f"the API did not start: see {log}")
        self.healthy_s = time.perf_counter() - begun  # from the spawn

    def memory(self) -> dict[str, float]:
        return process_memory_mb(self.process.pid)

    def stop(self) -> None:
        # Abandoned requests stay queued in the server, and a graceful stop waits for them.
        self.process.terminate()
        try:
            self.process.wait(5)
        except TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@contextmanager
def apis(env: dict[str, str], log: Path, processes: int = 1,
         code: Path | None = None) -> Iterator[list[Api]]:
    """`processes` API processes on the same prefix, each on its own port: replicas behind a
    balancer (the benches' clients spread over them). Every one is stopped on the way out."""
    started: list[Api] = []
    try:
        for n in range(processes):
            started.append(Api(env, log if processes == 1 else log.with_suffix(f".{n}.log"),
                               code))
        yield started
    finally:
        for api in started:
            api.stop()
