"""`python -m bench.fold` cannot rot: a tiny run on a spawned broker reports every
figure and leaves nothing in Redis. It reports, it never asserts speed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("ceiling", "decode", "decode+apply", "raw consumer", "rebuild")


def test_a_tiny_fold_bench_reports_every_figure_and_cleans_up(
        containers: dict[str, str]) -> None:
    prefix = f"bench-fold-smoke-{os.getpid()}"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fold", "--days", "20", "--runs", "2",
         "--tenants", "2", "--broker", "--redis-url", containers["redis"], "--prefix", prefix],
        cwd=ROOT, check=True, timeout=300, capture_output=True, text=True)  # a hang guard only

    assert re.search(r"^[\d,]+ messages \(20 simulated days, seed \d+, 2 tenant\(s\)\)",
                     done.stdout, re.MULTILINE), done.stdout
    for figure in FIGURES:
        line = re.search(rf"^{re.escape(figure)} +median +([\d,]+) ev/s .* CPU +([\d.]+) µs/ev",
                         done.stdout, re.MULTILINE)
        assert line, (figure, done.stdout)
        assert int(line[1].replace(",", "")) > 0 and float(line[2]) > 0
    assert re.search(r"^rebuild / raw consumer \(medians\): \d+\.\d{3}$", done.stdout,
                     re.MULTILINE), done.stdout
    with Redis.from_url(containers["redis"]) as redis:
        assert not list(redis.scan_iter(match=f"{prefix}*"))
