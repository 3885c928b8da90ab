"""`salespulse bench`: figures for the whole event path, measured, never asserted.

Starts its own stack (a Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set; the
event store named by DATABASE_URL or a fresh SQLite file; a fresh Redis prefix),
posts a simulated history through the API, and reports:
- ingest: events/s accepted by `POST /v1/events/batch`;
- end to end: events/s from the first POST until the projections hold them all;
- freshness: from the 202 of a single POST to the change visible in `GET /v1/funnel`;
- alert delay: from a condition becoming true to its SSE event and its webhook
  (`services/bench_alerts.py`).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import track
from rich.table import Table

from projections.stats import quantile
from services import bench_alerts
from services.broker import TansuBroker, free_port
from services.processes import is_healthy, spawn
from services.simulate.feed import post_events
from services.simulate.world import simulate

console = Console()


def _poll(condition: Any, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def _totals(client: httpx.Client) -> tuple[int, int, int]:
    rows = client.get("/v1/breakdown", params={"by": "month"}).json()["rows"]
    return (sum(r["deals"] for r in rows), sum(r["activities"] for r in rows),
            sum(r["leads"] for r in rows))


def run(days: int, probes: int, batch_size: int, alert_deals: int = 40) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-"))
    run_id = uuid.uuid4().hex[:8]
    env = {**os.environ, "REDIS_PREFIX": f"bench-{run_id}", "EVENTS_TOPIC": f"bench-{run_id}",
           "PROJECTOR_GROUP": f"bench-{run_id}", "DATA_DIR": str(work),
           "ALERTS_TOPIC": f"bench-alerts-{run_id}", "DEAD_LETTER_TOPIC": f"bench-dlq-{run_id}"}
    broker = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker = TansuBroker(log_path=work / "broker.log").start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    port = free_port()
    processes = [spawn(["api", "--port", str(port)], env, work / "api.log"),
                 spawn(["relay"], env, work / "relay.log"),
                 spawn(["projector"], env, work / "projector.log"),
                 spawn(["alerter"], env, work / "alerter.log")]
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, float] = {}
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            _poll(lambda: is_healthy(url), 60, 0.2)
            end = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=days)
            events = list(simulate(42, end - timedelta(days=days), end, leads_per_day=12))
            kinds = Counter(e["type"] for e in events)
            expected = (kinds["deal.created"], kinds["activity.logged"], kinds["lead.created"])
            started = time.perf_counter()
            post_events(url, events, batch_size=batch_size, progress=True)
            posted = time.perf_counter()
            _poll(lambda: _totals(client) == expected, 600, 0.05)
            projected = time.perf_counter()
            figures["events"] = len(events)
            figures["ingest_events_per_s"] = len(events) / (posted - started)
            figures["end_to_end_events_per_s"] = len(events) / (projected - started)
            figures["drain_after_last_post_s"] = projected - posted
            latencies = [_freshness(client) for _ in track(range(probes), "freshness")]
            figures["freshness_p50_ms"] = quantile(latencies, 0.5) or 0
            figures["freshness_p99_ms"] = quantile(latencies, 0.99) or 0
            figures["freshness_max_ms"] = max(latencies)
        if alert_deals:
            figures.update(bench_alerts.measure(url, deals=alert_deals))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
        if broker:
            broker.stop()
    return figures


def _freshness(client: httpx.Client) -> float:
    """Milliseconds from the 202 of one new deal to its appearance in the funnel."""
    before = client.get("/v1/funnel").json()["stages"][0]["open_deals"]
    event = {"id": str(uuid.uuid4()), "type": "deal.created",
             "occurred_at": datetime.now(UTC).isoformat(),
             "data": {"deal_id": f"BENCH-{uuid.uuid4().hex}", "owner_id": "R-001",
                      "amount": "1000.00"}}
    assert client.post("/v1/events", json=event).status_code == 202
    accepted = time.perf_counter()
    _poll(lambda: client.get("/v1/funnel").json()["stages"][0]["open_deals"] > before, 30)
    return (time.perf_counter() - accepted) * 1000


def report(figures: dict[str, float]) -> None:
    table = Table(title="salespulse: the whole event path on this machine")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in figures.items():
        table.add_row(name, f"{value:,.1f}")
    console.print(table)
