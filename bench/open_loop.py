"""Open-loop load with the dashboard's own request mix.

A closed-loop client waits for each answer before asking again, so a slow server slows its
clients and its latency hides the queue (coordinated omission). Here requests leave on a
fixed schedule, whatever the answers, and each latency counts from the moment the schedule
said to send: queueing in the server, or waiting for a connection, shows in p99. A request
that cannot be sent (no connection to be had) is `dropped`; one still unanswered `grace`
seconds after the end is `unfinished` and enters the percentiles at its age then.

The mix is what dashboards ask (`services/api/dashboard/app.js`): a page load (who am I,
display settings, dimensions, alerts) and then a refresh every 15 seconds (funnel, cycle,
forecast, revenue, targets, leaderboard, at-risk customers, stalled deals, and the trends:
leads, revenue and deals by month), with the filters people click on some refreshes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from projections.stats import quantile
from services.messages import gc_paused

Request = tuple[str, dict[str, str]]  # path, query

PAGE_LOAD: tuple[Request, ...] = (("/v1/me", {}), ("/v1/settings/display", {}),
                                  ("/v1/dimensions", {}), ("/v1/alerts", {}))
REFRESHES_PER_PAGE_LOAD = 20  # a page kept open five minutes


def _refresh(filters: dict[str, str], rep: str | None) -> list[Request]:
    # Targets: the panel asks those under way (a second time for the latest over, when
    # none is: rare enough to leave out).
    scoped = {"standing": "under_way", **{k: v for k, v in filters.items() if k in ("team", "rep")}}
    ranked = {k: v for k, v in filters.items() if k in ("from", "to", "team", "rep", "region")}
    asked = [("/v1/funnel", filters), ("/v1/cycle", filters), ("/v1/forecast", filters),
             ("/v1/revenue", {**filters, "by": "month"}), ("/v1/targets", scoped),
             ("/v1/leaderboard", ranked), ("/v1/customers/at-risk", {}),
             ("/v1/deals/stalled", {}), ("/v1/leads", {**filters, "by": "month"}),
             ("/v1/breakdown", {**filters, "by": "month"})]
    if rep is not None:
        asked.append((f"/v1/reps/{rep}", {}))
    return asked


def dashboard_mix(teams: Sequence[str], reps: Sequence[str], seed: int = 7,
                  year: int = 2017) -> Iterator[Request]:
    """Dashboards' requests, endlessly: half the refreshes unfiltered, a quarter by team, a
    tenth by rep (with the rep's page), the rest over a quarter of the year."""
    rng = random.Random(seed)
    refreshes = 0
    while True:
        if refreshes % REFRESHES_PER_PAGE_LOAD == 0:
            yield from PAGE_LOAD
        refreshes += 1
        draw = rng.random()
        filters: dict[str, str] = {}
        rep = None
        if draw < 0.25 and teams:
            filters = {"team": rng.choice(teams)}
        elif draw < 0.35 and reps:
            rep = rng.choice(reps)
            filters = {"rep": rep}
        elif draw < 0.5:
            quarter = rng.randrange(4)
            filters = {"from": f"{year}-{3 * quarter + 1:02d}-01",
                       "to": f"{year + (quarter == 3)}-{(3 * quarter + 3) % 12 + 1:02d}-01"}
        yield from _refresh(filters, rep)


@dataclass
class OpenLoad:
    rate: float  # requests per second offered
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    answered: int = 0
    errors: int = 0  # answered with a status other than 200, or the connection failed
    dropped: int = 0  # never sent: no connection to be had
    unfinished: int = 0
    client_cpu_s: float = 0.0
    by_route: dict[str, list[float]] = field(default_factory=dict)

    def figures(self, name: str) -> dict[str, float]:
        return {f"{name}_offered_per_s": self.rate,
                f"{name}_answered_per_s": self.answered / self.seconds if self.seconds else 0,
                f"{name}_p50_ms": quantile(self.latencies_ms, 0.5) or 0.0,
                f"{name}_p99_ms": quantile(self.latencies_ms, 0.99) or 0.0,
                f"{name}_max_ms": max(self.latencies_ms, default=0.0),
                f"{name}_errors": float(self.errors), f"{name}_dropped": float(self.dropped),
                f"{name}_unfinished": float(self.unfinished),
                f"{name}_client_cpu_share": self.client_cpu_s / self.seconds}

    def routes(self) -> dict[str, dict[str, float]]:
        return {route: {"requests": float(len(times)), "p50_ms": quantile(times, 0.5) or 0.0,
                        "p99_ms": quantile(times, 0.99) or 0.0}
                for route, times in sorted(self.by_route.items())}


class _Pool:
    """Keep-alive HTTP/1.1 connections over raw asyncio streams (an httpx client costs a
    core at a few hundred requests a second and would measure itself), spread over
    `servers` as a balancer would, at most `limit` open at once."""

    def __init__(self, urls: Sequence[str], limit: int) -> None:
        self.servers = [(u.hostname or "127.0.0.1", u.port or 80) for u in map(urlsplit, urls)]
        self.idle: list[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = [
            [] for _ in self.servers]
        self.open, self.limit, self.turn = 0, limit, 0

    async def take(self, again: int | None = None
                   ) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter, bool] | None:
        """A connection to the next server (and whether it was kept alive from an earlier
        request), or None when `limit` are open; `again`: a new one to that server, for a
        request whose kept-alive connection was found closed."""
        if again is None:
            self.turn = server = (self.turn + 1) % len(self.servers)
            if self.idle[server]:
                return (server, *self.idle[server].pop(), True)
        else:
            server = again
        if self.open >= self.limit:
            return None
        self.open += 1
        try:
            reader, writer = await asyncio.open_connection(*self.servers[server])
        except OSError:
            self.open -= 1
            raise
        return server, reader, writer, False

    def give_back(self, server: int, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
        self.idle[server].append((reader, writer))

    def lose(self, writer: asyncio.StreamWriter) -> None:
        self.open -= 1
        writer.close()

    def close(self) -> None:
        for idle in self.idle:
            for _, writer in idle:
                writer.close()


class _Failed(Exception):
    """The connection failed, or the answer was not HTTP."""


async def _ask(pool: _Pool, fields: str, path: str, query: dict[str, str]) -> bytes | None:
    """The answer's status line and headers, or None when no connection was to be had.

    A kept-alive connection the server closed while it sat idle (uvicorn's keep-alive
    timeout is 5 s) is retried once on a new one, as every HTTP client and balancer does:
    the request never reached the server, so it is no server error."""
    again: int | None = None
    while True:  # twice at most: the retry's connection is a new one, never `reused`
        try:
            taken = await pool.take(again)
        except OSError as exc:
            raise _Failed from exc
        if taken is None:
            return None
        server, reader, writer, reused = taken
        host, port = pool.servers[server]
        target = f"{path}?{urlencode(query)}" if query else path
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{fields}\r\n"
                         .encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            pool.lose(writer)
            if reused and not getattr(exc, "partial", b""):
                again = server  # closed while idle: nothing was answered
                continue
            raise _Failed from exc
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            pool.lose(writer)
            raise _Failed from exc
        pool.give_back(server, reader, writer)
        return head


def _route(path: str) -> str:
    return "/v1/reps/{id}" if path.startswith("/v1/reps/") else path


async def open_loop(urls: Sequence[str], requests: Iterator[Request], headers: dict[str, str],
                    *, rate: float, seconds: float, grace: float = 5.0,
                    connections: int = 512) -> OpenLoad:
    """Send `requests` at `rate` a second for `seconds`, one every 1/rate s on the clock."""
    pool = _Pool(urls, connections)
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    load = OpenLoad(rate, seconds)
    in_flight: dict[int, float] = {}

    async def one(n: int, due: float, path: str, query: dict[str, str]) -> None:
        in_flight[n] = due
        try:
            head = await _ask(pool, fields, path, query)
        except _Failed:
            load.errors += 1
            return
        finally:
            del in_flight[n]
        if head is None:
            load.dropped += 1
        elif head[9:12] != b"200":
            load.errors += 1
        else:
            took = (time.perf_counter() - due) * 1000
            load.answered += 1
            load.latencies_ms.append(took)
            load.by_route.setdefault(_route(path), []).append(took)

    tasks: set[asyncio.Task[Any]] = set()
    started, cpu = time.perf_counter(), time.process_time()
    with gc_paused():  # the generator's own collections would count as the server's time
        n = 0
        while (due := started + n / rate) < started + seconds:
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            path, query = next(requests)
            task = asyncio.create_task(one(n, due, path, query))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=grace)
        stopped = time.perf_counter()
    load.unfinished = len(in_flight)
    load.latencies_ms.extend((stopped - due) * 1000 for due in in_flight.values())
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.close()
    load.client_cpu_s = time.process_time() - cpu
    return load


async def closed_loop(urls: Sequence[str], requests: Iterator[Request],
                      headers: dict[str, str], *, clients: int, seconds: float) -> OpenLoad:
    """`clients` each asking the next request of the mix as soon as the last answered: the
    most answers a second the servers give for this mix (its `rate` is what was answered)."""
    pool = _Pool(urls, clients * len(urls))  # a client's next turn may be another server
    fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    load = OpenLoad(0.0, seconds)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            path, query = next(requests)
            begun = time.perf_counter()
            try:
                head = await _ask(pool, fields, path, query)
            except _Failed:
                load.errors += 1
                continue
            if head is None or head[9:12] != b"200":
                load.errors += 1
                continue
            load.answered += 1
            load.latencies_ms.append((time.perf_counter() - begun) * 1000)

    cpu = time.process_time()
    with gc_paused():
        await asyncio.gather(*(client() for _ in range(clients)))
    pool.close()
    load.rate = load.answered / seconds
    load.client_cpu_s = time.process_time() - cpu
    return load
