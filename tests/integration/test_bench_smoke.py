"""`salespulse bench` cannot rot: a tiny run completes and reports every figure.

It reports, it never asserts speed: no timing thresholds here, only that each
figure and each ceiling came out as a positive number and the JSON is complete.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.bench import COMPARISONS
from services.broker import TansuBroker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_bench_reports_every_figure_next_to_its_ceiling(
        broker: TansuBroker, containers: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "DATABASE_URL": containers["postgres"], "REDIS_URL": containers["redis"]}
    subprocess.run(
        [sys.executable, "-m", "services.bench", "--days", "5", "--probes", "3",
         "--alert-deals", "2", "--alert-spread", "1", "--json", str(out)],
        cwd=ROOT, env=env, check=True, timeout=120, capture_output=True)

    measured = json.loads(out.read_text())
    assert set(measured) == {"machine", "measured_at", "parameters", "figures", "comparisons"}
    assert measured["machine"]["nproc"] >= 1 and measured["machine"]["python"]
    figures = measured["figures"]
    wanted = {"events", "ingest_events_per_s", "end_to_end_events_per_s",
              "freshness_p50_ms", "freshness_p99_ms", "freshness_max_ms",
              "alert_sse_delay_p50_ms", "alert_sse_delay_p99_ms",
              "ingest_ceiling_events_per_s", "relay_events_per_s",
              "relay_ceiling_events_per_s", "rebuild_events_per_s",
              "projection_ceiling_events_per_s", "topic_messages"}
    assert wanted <= set(figures)
    for name in wanted:
        assert math.isfinite(figures[name]) and figures[name] > 0, name

    rows = {row["figure"]: row for row in measured["comparisons"]}
    assert set(rows) == {figure for figure, *_ in COMPARISONS}
    for figure, ours, ceiling, _method in COMPARISONS:
        row = rows[figure]
        assert row["salespulse_events_per_s"] == figures[ours]
        assert row["ceiling_events_per_s"] == figures[ceiling]
        assert row["ratio"] == pytest.approx(figures[ours] / figures[ceiling], rel=1e-12)
        assert row["ratio"] > 0 and row["ceiling"]
