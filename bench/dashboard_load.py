"""The dashboard's request mix on API replicas, open loop, beside the HTTP ceiling.

Two figures per scale: the mix sent on a schedule at `rate` requests a second (p50/p99
counted from when each request was due, errors, dropped), and the most answers a second the
replicas give for the mix with clients waiting on each other (closed loop), as a share of
what the HTTP ceiling gives with the same clients in the same run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bench import http_ceiling
from bench.open_loop import closed_loop, dashboard_mix, open_loop
from bench.replicas import apis

RATE = 300.0  # requests a second: about 250 dashboards open, each refreshing every 15 s
REPLICAS = 2


def _people(url: str, headers: dict[str, str]) -> tuple[list[str], list[str]]:
    """Teams and reps to filter by, as the dashboard's pickers offer them (none when the
    dimensions cannot be had: the mix then filters by dates only)."""
    answer = httpx.get(f"{url}/v1/dimensions", headers=headers, timeout=None)
    if answer.status_code != 200:
        return [], []
    found = answer.json()
    return list(found.get("team", [])), [rep["id"] for rep in found.get("reps", [])]


def dashboard(env: dict[str, str], log: Path, headers: dict[str, str], seconds: float, *,
              rate: float = RATE, replicas: int = REPLICAS,
              clients: int = 64) -> dict[str, float]:
    with apis(env, log, replicas) as started:
        urls = [api.url for api in started]
        teams, reps = _people(urls[0], headers)
        for url in urls:  # each replica loads its columns before the clock starts
            for path, query in _first_page(teams, reps):
                httpx.get(f"{url}{path}", params=query, headers=headers, timeout=None)
        offered = asyncio.run(open_loop(urls, dashboard_mix(teams, reps), headers,
                                        rate=rate, seconds=seconds))
        most = asyncio.run(closed_loop(urls, dashboard_mix(teams, reps, seed=8), headers,
                                       clients=clients, seconds=seconds))
        body = httpx.get(f"{urls[0]}/v1/funnel", headers=headers, timeout=None).content
    with http_ceiling.serve(body, log.parent, replicas) as ceilings:
        ceiling_urls = [url for url, _ in ceilings]
        ceiling_offered = asyncio.run(open_loop(ceiling_urls, dashboard_mix(teams, reps),
                                                headers, rate=rate, seconds=seconds))
        ceiling_most = asyncio.run(closed_loop(ceiling_urls, dashboard_mix(teams, reps, seed=8),
                                               headers, clients=clients, seconds=seconds))
    figures = {**offered.figures("dashboard"),
               **{k: v for k, v in ceiling_offered.figures("dashboard_ceiling").items()
                  if k.endswith(("p50_ms", "p99_ms"))},
               "dashboard_most_answers_per_s": most.rate,
               "dashboard_most_errors": float(most.errors),
               "dashboard_ceiling_most_answers_per_s": ceiling_most.rate}
    figures["dashboard_share_of_ceiling"] = (most.rate / ceiling_most.rate
                                             if ceiling_most.rate else 0.0)
    for route, by in offered.routes().items():
        figures[f"dashboard {route} p99_ms"] = by["p99_ms"]
    return figures


def _first_page(teams: list[str], reps: list[str]) -> list[tuple[str, dict[str, str]]]:
    mix = dashboard_mix(teams, reps)
    return [next(mix) for _ in range(15)]
