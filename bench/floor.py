"""`salespulse-bench floor`: the floor of every authenticated request, measured, never
asserted.

It starts a real `salespulse api` (no broker, a throwaway PostgreSQL schema, a fresh Redis
prefix) with one admin API key, then puts `--clients` concurrent keep-alive clients on
`GET /v1/settings/display` (credential, rate limit, no view) for `--seconds`, `--runs`
times, and prints per run and as medians: p50/p99 latency, requests/s, and the API
process's CPU milliseconds per request (from /proc, so the clients' own CPU is not in it).

The clients are bench-query's (`hammer`): HTTP/1.1 over raw asyncio streams, since an
httpx client tops out near 50 requests/s per core here, which would measure the client.
`--code DIR` runs the API from another checkout (e.g. a worktree of main) with the same
clients, so a before and an after come from one session.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from bench import http_ceiling
from bench.pipeline import machine, throwaway_schema
from bench.query import UNLIMITED
from bench.query_load import Load, hammer
from bench.replicas import apis
from projections.stats import quantile
from services.bootstrap import issue_key
from services.processes import cpu_seconds
from services.settings import Settings

console = Console()
PATH = "/v1/settings/display"


@dataclass(frozen=True)
class Run:
    load: Load  # the clients' view: latencies, answers, errors, their own CPU
    api_cpu_s: float

    def figures(self) -> dict[str, float]:
        load = self.load
        return {"p50_ms": quantile(load.latencies_ms, 0.5) or 0.0,
                "p99_ms": quantile(load.latencies_ms, 0.99) or 0.0,
                "requests_per_s": load.per_second,
                "api_cpu_ms_per_request": self.api_cpu_s * 1000 / max(load.answered, 1),
                "errors": float(load.errors),
                "client_cpu_share": load.client_cpu_s / load.seconds}


async def load(urls: list[str], token: str, clients: int, seconds: float,
               pids: list[int]) -> Run:
    """`hammer` on the floor route, with the CPU the servers (`pids`) used meanwhile."""
    cpu = _cpu(pids)
    measured = await hammer(urls, PATH, {}, {"Authorization": f"Bearer {token}"},
                            clients=clients, seconds=seconds)
    return Run(measured, _cpu(pids) - cpu)


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def run(clients: int, seconds: float, runs: int, code: Path | None, processes: int = 1,
        warmup: float = 3.0) -> dict[str, Any]:
    """API and HTTP ceiling runs in turn, `runs` of each, with `processes` servers apiece."""
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-floor-"))
    with throwaway_schema("benchf", "bench-floor") as schema:
        env = {**os.environ, "DATABASE_URL": schema.database_url, "DATA_DIR": str(work),
               "RATE_LIMIT": UNLIMITED, "REDIS_PREFIX": f"benchf-{uuid.uuid4().hex[:8]}"}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the floor needs no broker
        if code is not None:  # its own modules first: `-m` puts the working directory first
            env["PYTHONPATH"] = str(code.resolve())
        token = issue_key(Settings(database_url=schema.database_url, data_dir=work),
                          "default", "admin", name="bench-floor")
        with apis(env, work / "api.log", processes, code) as started:
            for api in started:
                console.print(f"API pid {api.process.pid}, running "
                              f"{Path(f'/proc/{api.process.pid}/cwd').resolve()}")
            body = httpx.get(f"{started[0].url}{PATH}",
                             headers={"Authorization": f"Bearer {token}"}).content
            with http_ceiling.serve(body, work, processes) as ceilings:
                servers = {"api": ([a.url for a in started], [a.process.pid for a in started]),
                           "ceiling": ([url for url, _ in ceilings],
                                       [pid for _, pid in ceilings])}
                for urls, pids in servers.values():
                    asyncio.run(load(urls, token, clients, warmup, pids))
                measured: dict[str, list[dict[str, float]]] = {"api": [], "ceiling": []}
                for n in range(runs):
                    for name, (urls, pids) in servers.items():
                        figures = asyncio.run(load(urls, token, clients, seconds,
                                                   pids)).figures()
                        console.print(f"run {n + 1}, {name}: " + ", ".join(
                            f"{k} {v:,.2f}" for k, v in figures.items()))
                        measured[name].append(figures)
    ratios = [a["requests_per_s"] / c["requests_per_s"]
              for a, c in zip(measured["api"], measured["ceiling"], strict=True)]
    medians = {name: statistics.median(r[name] for r in measured["api"])
               for name in measured["api"][0]}
    medians.update({f"ceiling_{name}": statistics.median(r[name] for r in measured["ceiling"])
                    for name in ("p50_ms", "p99_ms", "requests_per_s")})
    medians["ratio_to_ceiling"] = statistics.median(ratios)
    return {"machine": machine(), "parameters": {"clients": clients, "seconds": seconds,
                                                 "runs": runs, "processes": processes,
                                                 "code": str(code or ".")},
            "runs": measured["api"], "ceiling_runs": measured["ceiling"], "ratios": ratios,
            "medians": medians}


def report(measured: dict[str, Any]) -> None:
    parameters = measured["parameters"]
    table = Table(title=f"floor: {parameters['clients']} clients on GET {PATH}, "
                  f"{parameters['processes']} server process(es), median of "
                  f"{parameters['runs']} runs ({parameters['code']})")
    for column in ("figure", "median", "min", "max"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    runs = {**{name: [r[name] for r in measured["runs"]] for name in measured["runs"][0]},
            **{f"ceiling_{name}": [r[name] for r in measured["ceiling_runs"]]
               for name in ("p50_ms", "p99_ms", "requests_per_s")},
            "ratio_to_ceiling": measured["ratios"]}
    for name, value in measured["medians"].items():
        table.add_row(name, *(f"{v:,.2f}" for v in (value, min(runs[name]), max(runs[name]))))
    console.print(table)


def main(
    clients: Annotated[int, typer.Option(help="Concurrent keep-alive clients")] = 200,
    seconds: Annotated[float, typer.Option(help="Duration of each run")] = 15.0,
    runs: Annotated[int, typer.Option(min=1, help="Runs; the medians are reported")] = 3,
    code: Annotated[Path | None, typer.Option(
        help="Run the API from this checkout (e.g. a worktree of main) for a 'before'")]
    = None,
    processes: Annotated[int, typer.Option(
        min=1, help="API processes (and ceiling servers), the clients spread over them")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here")]
    = None,
) -> None:
    """Measure the authenticated request floor (reports only, never asserts)."""
    measured = run(clients, seconds, runs, code, processes)
    report(measured)
    if json_path:
        json_path.write_text(json.dumps(measured, indent=2) + "\n")
        console.print(f"wrote {json_path}")


if __name__ == "__main__":
    typer.run(main)
