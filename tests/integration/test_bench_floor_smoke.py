"""`salespulse-bench floor` cannot rot: a tiny run completes and reports every figure (no
timing thresholds: only that each figure came out, finite, and nothing failed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"p50_ms", "p99_ms", "requests_per_s", "api_cpu_ms_per_request", "errors",
           "client_cpu_share"}
CEILING = {"ceiling_p50_ms", "ceiling_p99_ms", "ceiling_requests_per_s", "ratio_to_ceiling"}


def test_a_tiny_floor_bench_reports_every_figure(containers: dict[str, str],
                                                tmp_path: Path) -> None:
    out = tmp_path / "bench-floor.json"
    env = {**os.environ, "DATABASE_URL": containers["postgres"], "REDIS_URL": containers["redis"]}
    subprocess.run(
        [sys.executable, "-m", "bench.floor", "--clients", "5", "--seconds", "1",
         "--runs", "2", "--code", str(ROOT), "--processes", "2", "--json", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True)  # a hang guard only

    measured = json.loads(out.read_text())
    assert measured["parameters"] == {"clients": 5, "seconds": 1.0, "runs": 2,
                                      "processes": 2, "code": str(ROOT)}
    assert len(measured["runs"]) == 2 and set(measured["medians"]) == FIGURES | CEILING
    assert len(measured["ceiling_runs"]) == 2 and len(measured["ratios"]) == 2
    assert all(measured["medians"][name] > 0 for name in CEILING)
    for run in measured["runs"] + measured["ceiling_runs"]:
        assert set(run) == FIGURES and all(math.isfinite(v) for v in run.values())
        assert run["requests_per_s"] > 0 and run["errors"] == 0
