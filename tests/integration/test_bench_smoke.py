"""`salespulse-bench pipeline` cannot rot: a tiny run completes and reports every figure.

It reports, it never asserts speed: no timing thresholds here, only that each
figure and each ceiling came out as a positive number, the JSON is complete, and
the projectors started on their own applied every event of the run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from alerts.notify import CHANNEL_KINDS
from bench.pipeline import COMPARISONS
from services.broker import TansuBroker

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_bench_reports_every_figure_next_to_its_ceiling(
        broker: TansuBroker, containers: dict[str, str], tmp_path: Path) -> None:
    redis = Redis.from_url(containers["redis"])
    before = set(redis.scan_iter(match="bench-*", count=1000))
    out = tmp_path / "figures" / "bench.json"  # a folder not made yet
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "DATABASE_URL": containers["postgres"], "REDIS_URL": containers["redis"]}
    subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--days", "5", "--probes", "3",
         "--alert-deals", "2", "--alert-spread", "1", "--steady-rate", "100",
         "--max-fraction", "0.5", "--pace-seconds", "2", "--scale-out", "1", "--scale-out", "2",
         "--projector-events", "2000",
         "--json", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300, capture_output=True)

    # The run's stack forgot its Redis prefix (read models, alerts, credentials).
    assert set(redis.scan_iter(match="bench-*", count=1000)) == before

    measured = json.loads(out.read_text())
    assert set(measured) == {"machine", "measured_at", "parameters", "runs", "figures",
                             "spread", "comparisons"}
    assert measured["machine"]["nproc"] >= 1 and measured["machine"]["python"]
    assert len(measured["runs"]) == 1
    figures = measured["figures"]
    assert figures == measured["runs"][0]  # one run: its figures are the medians
    loads = [f"freshness_{load}_{name}" for load in ("steady", "near_max")
             for name in ("target_events_per_s", "achieved_events_per_s", "p50_ms", "p99_ms",
                          "max_ms", "probes")]
    wanted = {"events", "ingest_events_per_s", "end_to_end_events_per_s",
              "freshness_p50_ms", "freshness_p99_ms", "freshness_max_ms",
              "alert_sse_delay_p50_ms", "alert_sse_delay_p99_ms",
              "ingest_ceiling_events_per_s", "relay_events_per_s",
              "relay_ceiling_events_per_s", "rebuild_events_per_s",
              "projection_ceiling_events_per_s", "topic_messages", "projected_events",
              "projector_alone_from_start_events_per_s", "scale_out_ceiling_events_per_s",
              "projector_ceiling_events_per_s", "projector_topic_events",
              "scale_out_1_from_start_events_per_s", "scale_out_2_from_start_events_per_s",
              "ingest_cpu_us_per_event_api", "late_feed_ingest_events_per_s",
              "late_feed_end_to_end_events_per_s", "late_feed_ingest_ratio",
              "late_feed_end_to_end_ratio", "late_feed_fold_ratio", *loads}
    assert wanted <= set(figures)
    for name in wanted:
        assert math.isfinite(figures[name]) and figures[name] > 0, name
    # 0 when one batch held every event; CPU net of idling may round to 0 on a short history
    processes = ("api", "relay", "projector", "alerter")
    for name in ("projector_alone_steady_events_per_s", "scale_out_1_steady_events_per_s",
                 "scale_out_2_steady_events_per_s",
                 *(f"ingest_cpu_us_per_event_{process}" for process in processes),
                 *(f"idle_cpu_share_{process}" for process in processes)):
        assert math.isfinite(figures[name]) and figures[name] >= 0, name

    assert figures["late_feed_held_on_arrival"] >= 0  # a tiny history may have none early

    # Each kind of channel, routed by the alerter to its receiver on loopback, got the
    # alerts of the deals timed for it (matched by their idempotency keys).
    assert figures["alert_channel_deals"] == 2
    for kind in CHANNEL_KINDS:
        assert figures[f"alert_channel_{kind}_delivered"] >= 1, kind
        for name in ("p50", "p99", "max"):
            figure = figures[f"alert_channel_{kind}_delay_{name}_ms"]
            assert math.isfinite(figure) and figure > 0, (kind, name)

    # The projectors started on their own applied every event the run's read models hold.
    assert figures["projected_events"] <= figures["topic_messages"]
    assert figures["projected_events"] > figures["events"]  # history, probes, loads, alerts
    # ...on the run's topic copied under tenants of their own until it held 2,000 events.
    copies = figures["projector_topic_events"] / figures["projected_events"]
    assert copies == int(copies) and figures["projector_topic_events"] >= 2000
    for applied in ("projector_alone_events", "scale_out_1_events", "scale_out_2_events"):
        assert figures[applied] == figures["projector_topic_events"], applied
    assert figures["freshness_steady_target_events_per_s"] == 100
    assert figures["freshness_near_max_target_events_per_s"] == pytest.approx(
        0.5 * figures["ingest_events_per_s"])
    for load in ("steady", "near_max"):
        # Every event of the load was applied in the end, whatever the lag on the way.
        assert figures[f"freshness_{load}_left_after_drain_events"] == 0
        assert figures[f"freshness_{load}_lag_end_events"] >= 0
        assert figures[f"freshness_{load}_kept_up"] in (0, 1)

    rows = {row["figure"]: row for row in measured["comparisons"]}
    scale_out = {figure for figure in rows if figure.startswith("scale-out")}
    assert set(rows) - scale_out == {figure for figure, *_ in COMPARISONS}
    assert len(scale_out) == 2
    for row in rows.values():
        ours = row["salespulse_events_per_s"]
        assert row["ratio"] == pytest.approx(ours / row["ceiling_events_per_s"], rel=1e-12)
        assert row["ratios"] == [row["ratio"]] and row["ceiling"]
    for figure, ours, ceiling, _method in COMPARISONS:
        assert rows[figure]["salespulse_events_per_s"] == figures[ours]
        assert rows[figure]["ceiling_events_per_s"] == figures[ceiling]
        # A steady pace is 0 when one fetch held every event (tiny runs), by definition.
        assert rows[figure]["ratio"] > 0 or ours in ("projector_alone_steady_events_per_s",
                                                     "rebuild_copy_steady_events_per_s")
