"""`salespulse-bench query`: the query path and memory at scale, measured, never asserted.

For each size asked for (10k and 100k deals by default) it folds that many deals'
worth of read models straight into a fresh Redis prefix (`services/simulate/scaled.py`),
starts a real `salespulse api` on it with an admin key in a throwaway PostgreSQL
schema, and reports:
- the cold request: the first `GET` after start, which loads the tenant's column store
  (`services/api/columns.py`); the same request again (answered from the cache of the
  change stream's place); a question not asked before (computed);
- `GET /v1/funnel` and `GET /v1/breakdown?by=team` under `--clients` concurrent clients
  for `--seconds` each, once all asking the same question and once each request asking
  a new one (a different date window): p50/p99/max latency, requests/s, errors,
  unfinished;
- every GET view asked new questions one at a time, beside the HTTP ceiling sending its
  answer (`bench/route_table.py`);
- the API's resident memory after start, after the first answer and at its peak (VmHWM),
  and what Redis holds for the prefix (MEMORY USAGE of each key), per 100k deals.
Once per run, the same load on `GET /v1/settings/display` (credential and rate limit,
no view) gives the floor of the HTTP path on this machine.

The API is restarted between the two routes: requests abandoned at the end of a run
stay queued in the server, and would otherwise be computed during the next one.
`python -m bench.query --json PATH --write-docs` also writes the figures out.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench import http_ceiling, route_table
from bench import query_docs as bench_query_docs
from bench.dashboard_load import RATE, REPLICAS, dashboard
from bench.pipeline import machine, throwaway_schema
from bench.projector import forget_prefix
from bench.query_load import hammer, redis_memory_mb, timed_get
from bench.replicas import apis
from services.bootstrap import issue_key
from services.readmodels.codec import decode
from services.readmodels.store import KINDS, FactStore
from services.settings import Settings
from services.simulate.scaled import build

console = Console()
Route = tuple[str, dict[str, str]]  # path, query
ROUTES: dict[str, Route] = {"funnel": ("/v1/funnel", {}),
                            "breakdown": ("/v1/breakdown", {"by": "team"})}
FLOOR: Route = ("/v1/settings/display", {})
# The bench measures queries, not the per-credential limit its single key would hit.
UNLIMITED = "1000000/second"
# With the default 5 s, the API's first request fails (500) once loading the tenant's records
# takes longer; `records_load_ms` says when that is. A longer one lets the bench go on.
LOAD_TIMEOUT_S = "600"


def _route(env: dict[str, str], log: Path, headers: dict[str, str], name: str,
           clients: int, seconds: float,
           processes: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """One route on freshly started APIs, then the HTTP ceiling with the same answer and
    clients: (figures, the APIs' memory figures, the largest of each)."""
    path, params = ROUTES[name]
    with apis(env, log, processes) as started:
        first = started[0]
        rss = max(api.memory()["VmRSS"] for api in started)
        with httpx.Client(base_url=first.url, headers=headers, timeout=None) as client:
            # The first request loads the records and builds the snapshot.
            cold, answer = timed_get(client, path, params)
            snapshot = max(api.memory()["VmRSS"] for api in started)
            alone = sorted(timed_get(client, path, params)[0] for _ in range(3))[1]
            asked = route_table.window(**params)  # each one a new question
            new = sorted(timed_get(client, path, asked(10**6 + n))[0] for n in range(3))[1]
            body = client.get(path, params=params).content
        for other in started[1:]:  # every replica answers from loaded columns under the load
            with httpx.Client(base_url=other.url, headers=headers, timeout=None) as client:
                timed_get(client, path, params)
        urls = [api.url for api in started]
        load = asyncio.run(hammer(urls, path, params, headers, clients=clients,
                                  seconds=seconds))
        varied = asyncio.run(hammer(urls, path, asked, headers, clients=clients,
                                    seconds=seconds))
        peak = max(api.memory()["VmHWM"] for api in started)
    with http_ceiling.serve(body, log.parent, processes) as ceilings:
        ceiling = asyncio.run(hammer([url for url, _ in ceilings], path, params, headers,
                                     clients=clients, seconds=seconds))
    figures = {f"{name}_cold_ms": cold, f"{name}_alone_ms": alone, f"{name}_new_alone_ms": new,
               **load.figures(name), **varied.figures(f"{name}_new"),
               **{key: value for key, value in ceiling.figures(f"{name}_ceiling").items()
                  if key.endswith(("p50_ms", "p99_ms", "requests_per_s"))}}
    figures[f"{name}_ratio_to_ceiling"] = load.per_second / ceiling.per_second
    figures[f"{name}_first_answer_s"] = first.healthy_s + cold / 1000
    if name == "breakdown":  # the API sees every deal built: the figures are about them all
        figures["deals_seen"] = float(sum(row["deals"] for row in answer["rows"]))
    console.print(", ".join(f"{key} {value:,.1f}" for key, value in figures.items()))
    return figures, {"api_rss_started_mb": rss, "api_rss_snapshot_mb": snapshot,
                     "api_peak_rss_mb": peak}


def _scale(deals: int, env: dict[str, str], work: Path, headers: dict[str, str],
           clients: int, seconds: float, seed: int, processes: int = 1,
           dashboard_rate: float = RATE) -> dict[str, float]:
    prefix = f"benchq-{uuid.uuid4().hex[:8]}"
    env = {**env, "REDIS_PREFIX": prefix}
    redis = Redis.from_url(env.get("REDIS_URL", Settings().redis_url),
                           socket_timeout=float(LOAD_TIMEOUT_S))
    store = FactStore(redis, prefix)

    async def fill() -> Any:
        with Progress(console=console) as progress:
            task = progress.add_task(f"{deals:,} deals: simulating and folding copy 0",
                                     total=None)

            def advance(done: int, copies: int) -> None:
                progress.update(task, description=f"{deals:,} deals: writing copies",
                                completed=done, total=copies)

            built = await build(store, deals, seed=seed, on_progress=advance)
        held = await redis_memory_mb(redis, prefix)
        begun = time.perf_counter()  # what the API's cold request does first: read and
        for kind in KINDS:  # decode every record, a chunk at a time (never all at once)
            async for chunk in store.scan("default", kind):
                for raw in chunk:
                    decode(raw)
        loaded = (time.perf_counter() - begun) * 1000
        await redis.aclose()
        return built, held, loaded

    memory: dict[str, float] = {}
    try:  # the prefix is dropped whatever happens, a half-built one too
        built, redis_mb, records_load_ms = asyncio.run(fill())
        figures: dict[str, float] = {
            "deals": float(built.deals), "events": float(built.events),
            "template_seconds": built.template_seconds, "fold_seconds": built.fold_seconds,
            "fold_events_per_s": built.fold_events_per_s, "copy_seconds": built.copy_seconds,
            "redis_mb": redis_mb, "records_load_ms": records_load_ms,
            "redis_mb_per_100k_deals": redis_mb / built.deals * 100_000}
        for name in ROUTES:
            console.print(f"{deals:,} deals: {clients} clients on {ROUTES[name][0]} "
                          f"for {seconds:g} s")
            measured, api_memory = _route(env, work / f"api-{prefix}-{name}.log", headers,
                                          name, clients, seconds, processes)
            figures.update(measured)
            for key, value in api_memory.items():
                memory[key] = max(memory.get(key, 0.0), value)
        console.print(f"{deals:,} deals: every view, {route_table.SAMPLES} new questions "
                      "each, one at a time")
        with apis(env, work / f"api-{prefix}-views.log", 1) as [api]:
            figures.update(route_table.measure(api.url, headers, work))
            figures["api_peak_rss_views_mb"] = api.memory()["VmHWM"]  # every view warm
        console.print(f"{deals:,} deals: the dashboard's mix, open loop at "
                      f"{dashboard_rate:g}/s on {REPLICAS} APIs, for {seconds:g} s")
        figures.update(dashboard(env, work / f"api-{prefix}-dashboard.log", headers, seconds,
                                 rate=dashboard_rate))
    finally:
        asyncio.run(_drop(env, prefix))
    figures.update(memory)
    per_100k = 100_000 / built.deals
    figures["api_peak_rss_mb_per_100k_deals"] = memory["api_peak_rss_mb"] * per_100k
    # What the deals cost, without the process's own footprint at start:
    figures["api_growth_mb_per_100k_deals"] = \
        (memory["api_peak_rss_mb"] - memory["api_rss_started_mb"]) * per_100k
    return figures


async def _drop(env: dict[str, str], prefix: str) -> None:
    redis = Redis.from_url(env.get("REDIS_URL", Settings().redis_url))
    await forget_prefix(redis, prefix)
    await redis.aclose()


def _floor(env: dict[str, str], work: Path, headers: dict[str, str], clients: int,
           seconds: float, processes: int = 1) -> dict[str, float]:
    """The HTTP path with a credential and no view: what any query pays first."""
    with apis({**env, "REDIS_PREFIX": f"benchq-{uuid.uuid4().hex[:8]}"},
              work / "api-floor.log", processes) as started:
        console.print(f"floor: {clients} clients on {FLOOR[0]} for {seconds:g} s")
        load = asyncio.run(hammer([api.url for api in started], *FLOOR, headers,
                                  clients=clients, seconds=seconds))
    figures = load.figures("floor")
    console.print(", ".join(f"{key} {value:,.1f}" for key, value in figures.items()))
    return figures


def run(deals: list[int], clients: int, seconds: float, seed: int = 7,
        processes: int = 1, dashboard_rate: float = RATE) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-query-"))
    with throwaway_schema("benchq", "bench-query") as schema:
        database_url = schema.database_url
        env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(work),
               "RATE_LIMIT": UNLIMITED, "REDIS_SOCKET_TIMEOUT": LOAD_TIMEOUT_S}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # queries need no broker; /healthz skips it
        key = issue_key(Settings(database_url=database_url, data_dir=work), "default", "admin",
                        name="bench-query")
        headers = {"Authorization": f"Bearer {key}"}
        floor = _floor(env, work, headers, clients, seconds, processes)
        scales = [_scale(n, env, work, headers, clients, seconds, seed, processes,
                         dashboard_rate) for n in deals]
    return {"machine": machine(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": {"deals": deals, "clients": clients, "seconds": seconds,
                           "seed": seed, "api_processes": processes,
                           "dashboard_rate": dashboard_rate},
            "floor": floor, "scales": scales}


def report(measured: dict[str, Any]) -> None:
    scales = measured["scales"]
    table = Table(title=f"salespulse queries and memory, {measured['parameters']['clients']} "
                  "concurrent clients")
    table.add_column("figure")
    for scale in scales:
        table.add_column(f"{scale['deals']:,.0f} deals", justify="right")
    for name in scales[0]:
        table.add_row(name, *(f"{scale[name]:,.1f}" for scale in scales))
    console.print(table)
    floor = Table(title="floor: credential and rate limit, no view (GET /v1/settings/display)")
    floor.add_column("figure")
    floor.add_column("value", justify="right")
    for name, value in measured["floor"].items():
        floor.add_row(name, f"{value:,.1f}")
    console.print(floor)


def main(
    deals: Annotated[list[int] | None, typer.Option(
        help="Deals' worth of read models to measure at (repeat for several sizes)")] = None,
    clients: Annotated[int, typer.Option(help="Concurrent clients")] = 200,
    seconds: Annotated[float, typer.Option(help="Duration of each load, per route")] = 20.0,
    seed: int = 7,
    api_processes: Annotated[int, typer.Option(
        min=1, help="API processes on the same read models (replicas behind a balancer); "
                    "the clients spread over them")] = 1,
    dashboard_rate: Annotated[float, typer.Option(
        min=1, help="Requests/s of the dashboard's mix, sent open loop to "
                    f"{REPLICAS} API processes")] = RATE,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here")]
    = None,
    write_docs: Annotated[bool, typer.Option(
        help="Write the 'Query and memory' section of docs/BENCHMARKS.md")] = False,
) -> None:
    """Measure query latency and memory at scale (reports only, never asserts)."""
    measured = run(deals or [10_000, 100_000], clients, seconds, seed, api_processes,
                   dashboard_rate)
    report(measured)
    if json_path:
        json_path.write_text(json.dumps(measured, indent=2) + "\n")
        console.print(f"wrote {json_path}")
    if write_docs:
        bench_query_docs.write(measured)
        console.print(f"wrote {bench_query_docs.DOCS}")


if __name__ == "__main__":
    typer.run(main)
