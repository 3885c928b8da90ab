"""Concurrent clients on one route for a fixed time, and the memory figures of the bench.

Each client sends its next request as soon as the previous one answers, until the
duration is up. A request still unanswered `grace` seconds after that is abandoned
and counted as `unfinished`; its age at that moment enters the percentiles as a lower
bound, so a server that cannot keep up shows it in p50/p99 instead of hiding it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from redis.asyncio import Redis

from projections.stats import quantile
from services.messages import gc_paused


@dataclass(frozen=True)
class Load:
    latencies_ms: list[float]  # answered requests, then the unfinished at their age
    answered: int
    errors: int  # answered with a status other than 200, or a transport error
    unfinished: int
    seconds: float
    client_cpu_s: float  # this process's CPU time: near `seconds`, the clients were the limit

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def figures(self, name: str) -> dict[str, float]:
        return {f"{name}_p50_ms": quantile(self.latencies_ms, 0.5) or 0.0,
                f"{name}_p99_ms": quantile(self.latencies_ms, 0.99) or 0.0,
                f"{name}_max_ms": max(self.latencies_ms, default=0.0),
                f"{name}_requests_per_s": self.per_second,
                f"{name}_requests": float(self.answered),
                f"{name}_errors": float(self.errors),
                f"{name}_unfinished": float(self.unfinished),
                f"{name}_client_cpu_share": self.client_cpu_s / self.seconds}


Params = dict[str, str] | Callable[[int], dict[str, str]]


async def hammer(urls: list[str], path: str, params: Params, headers: dict[str, str], *,
                 clients: int, seconds: float, grace: float = 5.0) -> Load:
    """`clients` concurrent keep-alive connections on `GET path` for `seconds`, spread over
    the servers at `urls` (as a balancer would). `params` is the query of every request, or
    gives the n-th request's query.

    The clients speak HTTP/1.1 over raw asyncio streams: an httpx client used a whole CPU
    for ~200 requests/s here, so it measured itself rather than the API."""
    servers = [(where.hostname or "127.0.0.1", where.port or 80)
               for where in map(urlsplit, urls)]
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    def request(query: dict[str, str], host: str, port: int) -> bytes:
        target = f"{path}?{urlencode(query)}" if query else path
        return f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{fields}\r\n".encode()
    answered: list[float] = []
    errors = 0
    sent_at: dict[int, float] = {}  # client -> start of its request in flight
    sent = itertools.count()
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds

    async def one(client_id: int) -> None:
        nonlocal errors
        host, port = servers[client_id % len(servers)]
        same = None if callable(params) else request(params, host, port)
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            return
        try:
            while time.perf_counter() < deadline:
                asked = same or request(params(next(sent)), host, port)  # type: ignore[operator]
                sent_at[client_id] = begun = time.perf_counter()
                writer.write(asked)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                del sent_at[client_id]
                if head[9:12] == b"200":
                    answered.append((time.perf_counter() - begun) * 1000)
                else:
                    errors += 1
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            sent_at.pop(client_id, None)
            errors += 1
        finally:
            writer.close()

    # The generator's own full collections (~150 ms each here) would count as the server's.
    with gc_paused():
        tasks = [asyncio.create_task(one(i)) for i in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=seconds + grace)
        stopped = time.perf_counter()
    waiting = [(stopped - begun) * 1000 for begun in sent_at.values()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return Load(answered + waiting, len(answered), errors, len(waiting), stopped - started,
                time.process_time() - cpu)


def timed_get(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, Any]:
    """Milliseconds of one request alone on the server, and its answer; raises unless 200."""
    begun = time.perf_counter()
    answer = client.get(path, params=params).raise_for_status()
    return (time.perf_counter() - begun) * 1000, answer.json()


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident (VmRSS) and peak resident (VmHWM) memory of a live process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # the kernel reports kB
    return fields


async def redis_memory_mb(redis: Redis, prefix: str) -> float:
    """What Redis holds for `prefix`: MEMORY USAGE of each of its keys, every field counted."""
    total = 0
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        usage: Any = await redis.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        total += int(usage or 0)
    return total / 1024 / 1024
