"""`salespulse-bench query` cannot rot: a tiny run completes and reports every figure.

It reports, it never asserts speed: no timing thresholds here, only that each figure
came out as a finite number (positive, or a count of zero or more for errors and
unfinished requests), that the JSON is complete, and that its docs section replaces
itself in docs/BENCHMARKS.md without touching the rest.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import query_docs as bench_query_docs
from bench import route_table

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROUTE = ("cold_ms", "alone_ms", "p50_ms", "p99_ms", "max_ms", "requests_per_s", "requests",
         "client_cpu_share")
COUNTS = ("errors", "unfinished")
SCALE = {"deals", "deals_seen", "events", "template_seconds", "fold_seconds",
         "fold_events_per_s", "copy_seconds", "redis_mb", "records_load_ms",
         "redis_mb_per_100k_deals", "api_rss_started_mb", "api_rss_snapshot_mb",
         "api_peak_rss_mb", "api_peak_rss_views_mb",
         "api_peak_rss_mb_per_100k_deals", "api_growth_mb_per_100k_deals",
         *(f"{route}_{name}" for route in ("funnel", "breakdown")
           for name in (*ROUTE, "first_answer_s")),
         *(f"{route}_new_{name}" for route in ("funnel", "breakdown")
           for name in ("alone_ms", *ROUTE[2:])),
         *(f"{route}_{name}" for route in ("funnel", "breakdown")
           for name in ("ceiling_p50_ms", "ceiling_p99_ms", "ceiling_requests_per_s",
                        "ratio_to_ceiling")),
         *(f"dashboard_{name}" for name in (
             "offered_per_s", "answered_per_s", "p50_ms", "p99_ms", "max_ms",
             "client_cpu_share", "ceiling_p50_ms", "ceiling_p99_ms", "most_answers_per_s",
             "ceiling_most_answers_per_s", "share_of_ceiling"))}
DASHBOARD_COUNTS = {"dashboard_errors", "dashboard_dropped", "dashboard_unfinished",
                    "dashboard_most_errors"}


def test_a_tiny_query_bench_reports_every_figure(containers: dict[str, str],
                                                tmp_path: Path) -> None:
    out = tmp_path / "bench-query.json"
    env = {**os.environ, "DATABASE_URL": containers["postgres"], "REDIS_URL": containers["redis"]}
    subprocess.run(
        [sys.executable, "-m", "bench.query", "--deals", "300", "--clients", "10",
         "--seconds", "2", "--api-processes", "2", "--dashboard-rate", "40",
         "--json", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True)  # a hang guard only

    measured = json.loads(out.read_text())
    assert set(measured) == {"machine", "measured_at", "parameters", "floor", "scales"}
    assert measured["parameters"] == {"deals": [300], "clients": 10, "seconds": 2.0, "seed": 7,
                                    "api_processes": 2, "dashboard_rate": 40.0}
    [scale] = measured["scales"]
    counts = {f"{route}_{name}" for route in ("funnel", "breakdown", "floor", "funnel_new",
                                              "breakdown_new") for name in COUNTS}
    routes = {key for key in scale if key.startswith("dashboard /v1/")}
    assert {"dashboard /v1/funnel p99_ms", "dashboard /v1/me p99_ms"} <= routes
    views = {f"route {view} {name}" for view in route_table.views("R-1")
             for name in ("p50_ms", "p99_ms", "bytes", "ceiling_p50_ms")}
    view_errors = {f"route {view} errors" for view in route_table.views("R-1")}
    assert set(scale) == (SCALE | DASHBOARD_COUNTS | routes | views | view_errors
                          | {c for c in counts if not c.startswith("floor")})
    # Every GET view answers, each question a new one.
    assert {name: scale[name] for name in view_errors if scale[name]} == {}
    # Every view of the dashboard's mix answers.
    assert scale["dashboard_answered_per_s"] > 0
    assert scale["dashboard_errors"] == scale["dashboard_most_errors"] == 0
    assert set(measured["floor"]) == {f"floor_{name}" for name in ROUTE[2:] + COUNTS}
    for name, value in {**scale, **measured["floor"]}.items():
        assert math.isfinite(value), name
        assert value >= 0 if name in counts | DASHBOARD_COUNTS | view_errors else value > 0, \
            name
    # The simulated year gives about the deals asked for; the API must see all it holds.
    assert scale["deals_seen"] == scale["deals"] and scale["events"] > scale["deals"]
    assert scale["api_peak_rss_mb"] >= scale["api_rss_started_mb"]

    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text("# Benchmarks\n\nthe ingest figures\n")
    bench_query_docs.write(measured, docs)
    bench_query_docs.write(measured, docs)  # a second run replaces the section
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nthe ingest figures\n")
    assert text.count("## Query and memory") == 1 and text.count(bench_query_docs.END) == 1
    assert "| customers at risk | " in text and "| export (CSV) | " in text
