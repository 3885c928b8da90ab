"""`salespulse bench`: figures for the whole event path, measured, never asserted.

Starts its own stack (a Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set; the
event store named by DATABASE_URL or a fresh SQLite file; a fresh Redis prefix),
posts a simulated history through the API, and reports:
- ingest: events/s accepted by `POST /v1/events/batch`;
- end to end: events/s from the first POST until the projections hold them all;
- freshness: from the 202 of a single POST to the change visible in `GET /v1/funnel`;
- alert delay: from a condition becoming true to its SSE event and its webhook
  (`services/bench_alerts.py`);
- side by side with the raw ceilings of the same run (`services/bench_ceilings.py`):
  ingest vs raw PostgreSQL inserts, the relay vs a raw aiokafka producer, the
  projector and the rebuild vs a raw aiokafka consumer that only decodes.

The event store is always PostgreSQL here (DATABASE_URL, else the local default), in
a throwaway schema dropped afterwards, so the ingest ceiling uses the same driver.
`python -m services.bench --json PATH --write-docs` also writes the figures out.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse, urlunparse

import httpx
import psycopg
import typer
from rich.console import Console
from rich.progress import track
from rich.table import Table

from projections.stats import quantile
from services import bench_alerts, bench_ceilings
from services.bootstrap import issue_key
from services.broker import TansuBroker, free_port
from services.processes import is_healthy, spawn
from services.settings import Settings
from services.simulate.feed import post_events
from services.simulate.world import simulate

console = Console()
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"


def _poll(condition: Any, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def _totals(client: httpx.Client) -> tuple[int, int, int] | None:
    answer = client.get("/v1/breakdown", params={"by": "month"})
    if answer.status_code != 200:
        return None  # e.g. 503 while the projector builds its read models
    rows = answer.json()["rows"]
    return (sum(r["deals"] for r in rows), sum(r["activities"] for r in rows),
            sum(r["leads"] for r in rows))


def run(days: int, probes: int, batch_size: int, alert_deals: int = 40,
        alert_spread: float = 20.0) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-"))
    run_id = uuid.uuid4().hex[:8]
    postgres = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES
    if not postgres.startswith("postgres"):
        raise ValueError("the bench needs a PostgreSQL DATABASE_URL (its ceiling is psycopg)")
    postgres = urlunparse(urlparse(postgres)._replace(query=""))
    schema = f"bench_{run_id}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    env = {**os.environ, "REDIS_PREFIX": f"bench-{run_id}", "EVENTS_TOPIC": f"bench-{run_id}",
           "PROJECTOR_GROUP": f"bench-{run_id}", "DATA_DIR": str(work),
           "ALERTS_TOPIC": f"bench-alerts-{run_id}", "DEAD_LETTER_TOPIC": f"bench-dlq-{run_id}",
           "DATABASE_URL": f"{postgres}?schema={schema}"}
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
        _poll(lambda: is_healthy(url), 60, 0.2)
        key = issue_key(Settings(database_url=env["DATABASE_URL"], data_dir=work), "default",
                        "admin", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            end = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=days)
            events = list(simulate(42, end - timedelta(days=days), end, leads_per_day=12))
            kinds = Counter(e["type"] for e in events)
            expected = (kinds["deal.created"], kinds["activity.logged"], kinds["lead.created"])
            started = time.perf_counter()
            post_events(url, events, batch_size=batch_size, progress=True, headers=headers)
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
            figures.update(bench_alerts.measure(url, headers, deals=alert_deals,
                                                spread_seconds=alert_spread))
        _stop(processes)  # the ceilings get the machine to themselves, the stack stays up
        figures.update(_ceilings(env, postgres, schema))
    finally:
        _stop(processes)
        if broker:
            broker.stop()
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return figures


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(15)


def _ceilings(env: dict[str, str], postgres: str, schema: str) -> dict[str, float]:
    """The relay, the rebuild and every raw ceiling, one after the other, on the run's data."""
    settings = Settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                        events_topic=env["EVENTS_TOPIC"], redis_prefix=env["REDIS_PREFIX"],
                        database_url=env["DATABASE_URL"], data_dir=Path(env["DATA_DIR"]))
    console.print("ceilings: PostgreSQL inserts, relay, producer, rebuild, consumer")
    ingest = bench_ceilings.postgres_insert(postgres, schema)
    relay = asyncio.run(bench_ceilings.relay_backlog(settings))
    producer = asyncio.run(bench_ceilings.raw_producer(settings))
    rebuilt = asyncio.run(bench_ceilings.rebuild_rate(settings))
    consumer = asyncio.run(bench_ceilings.raw_consumer(settings))
    return {"ingest_ceiling_events_per_s": ingest.per_second,
            "relay_events_per_s": relay.per_second,
            "relay_ceiling_events_per_s": producer.per_second,
            "rebuild_events_per_s": rebuilt.per_second,
            "projection_ceiling_events_per_s": consumer.per_second,
            "topic_messages": consumer.count}


# (figure, salespulse key, ceiling key, how the ceiling is measured)
COMPARISONS = [
    ("ingest: POST /v1/events/batch", "ingest_events_per_s", "ingest_ceiling_events_per_s",
     "psycopg executemany of the store's own rows into a throwaway table, "
     f"one transaction per {bench_ceilings.ROWS_PER_TRANSACTION} rows"),
    ("relay: event store to Kafka (backlog)", "relay_events_per_s",
     "relay_ceiling_events_per_s",
     "raw aiokafka producer sending the relay's messages to a new topic"),
    ("projection: faust projector (end to end)", "end_to_end_events_per_s",
     "projection_ceiling_events_per_s", "raw aiokafka consumer, getmany + orjson.loads"),
    ("projection: rebuild runner", "rebuild_events_per_s",
     "projection_ceiling_events_per_s", "raw aiokafka consumer, getmany + orjson.loads"),
]


def comparisons(figures: dict[str, float]) -> list[dict[str, Any]]:
    """Each salespulse rate next to its ceiling of the same run, and their ratio."""
    rows = []
    for figure, ours, ceiling, method in COMPARISONS:
        rate, limit = figures[ours], figures[ceiling]
        rows.append({"figure": figure, "salespulse_events_per_s": rate,
                     "ceiling_events_per_s": limit, "ratio": rate / limit if limit else 0.0,
                     "ceiling": method})
    return rows


def machine() -> dict[str, Any]:
    # The load average says how much else shared the CPUs while the run measured.
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m": os.getloadavg()[0]}


def result(figures: dict[str, float], days: int, probes: int, batch_size: int,
           alert_deals: int) -> dict[str, Any]:
    return {"machine": machine(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": {"days": days, "probes": probes, "batch_size": batch_size,
                           "alert_deals": alert_deals},
            "figures": figures, "comparisons": comparisons(figures)}


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
    side = Table(title="salespulse next to the raw ceiling, same run")
    for column in ("figure", "salespulse ev/s", "ceiling ev/s", "ratio"):
        side.add_column(column, justify="left" if column == "figure" else "right")
    for row in comparisons(figures):
        side.add_row(row["figure"], f"{row['salespulse_events_per_s']:,.0f}",
                     f"{row['ceiling_events_per_s']:,.0f}", f"{row['ratio']:.3f}")
    console.print(side)


def markdown(measured: dict[str, Any]) -> str:
    """docs/BENCHMARKS.md, regenerated from one run's JSON."""
    box, params = measured["machine"], measured["parameters"]
    lines = [
        "# Benchmarks", "",
        "Generated by `python -m services.bench --write-docs` (the `salespulse bench` code);",
        "do not edit by hand. One run: every ratio is taken against a ceiling measured in the",
        "same run, on the same stack (Tansu broker, PostgreSQL, Redis on this machine).", "",
        f"Machine: {box['nproc']} CPUs (nproc), Python {box['python']}, {box['platform']};",
        f"1-minute load average at the end of the run: {box['load_average_1m']:.2f} (the",
        "machine is shared: other work on it lowers every figure, ceilings included).",
        f"Measured {measured['measured_at']} with `--days {params['days']} --probes "
        f"{params['probes']} --batch-size {params['batch_size']} --alert-deals "
        f"{params['alert_deals']}`.", "",
        "## Side by side with the raw ceiling", "",
        "| figure | salespulse (ev/s) | ceiling (ev/s) | ratio | ceiling measured as |",
        "|---|---:|---:|---:|---|",
    ]
    for row in measured["comparisons"]:
        lines.append(f"| {row['figure']} | {row['salespulse_events_per_s']:,.0f} | "
                     f"{row['ceiling_events_per_s']:,.0f} | {row['ratio']:.3f} | "
                     f"{row['ceiling']} |")
    lines += ["", "## Every figure of the run", "", "| figure | value |", "|---|---:|"]
    lines += [f"| {name} | {value:,.1f} |" for name, value in measured["figures"].items()]
    lines += ["", "## How each figure is measured", "",
              "- **ingest**: simulated history POSTed in batches through "
              "`POST /v1/events/batch`, events / wall time of the POSTs.",
              "- **ingest ceiling**: the event store's own rows (same sizes) read back and "
              "inserted with psycopg `executemany` (not COPY) into a throwaway table of the "
              "same shape (primary key and notification id), one transaction per 1,000 rows.",
              "- **relay**: the real `Relay` draining the whole store of the run onto a new "
              "topic (its position kept in memory), from start until the last batch is "
              "acknowledged.",
              "- **relay ceiling**: the events topic's messages (key and value bytes) sent by "
              "a raw aiokafka producer with the relay's settings to a new topic, awaiting "
              "the acknowledgements every 1,000 messages like the relay.",
              "- **projection (faust projector)**: the end-to-end figure, events / time from "
              "the first POST until the funnel holds them all; a lower bound of what the "
              "projector can do, since it cannot run ahead of ingest and relay.",
              "- **projection (rebuild runner)**: `services.rebuild.rebuild` of the events "
              "topic into a throwaway Redis prefix (same reducer as the projector).",
              "- **projection ceiling**: a raw aiokafka consumer reading the same topic with "
              "`getmany` and `orjson.loads` of each message, nothing else.",
              "- freshness and alert delay: see `services/bench.py` and `docs/ALERTS.md`.",
              "", "Each figure is a single measurement, not yet a median of repeated runs.",
              "Profiles, medians of repeated runs and before/after figures of each "
              "optimisation: `docs/PERFORMANCE.md`.", ""]
    return "\n".join(lines)


def main(
    days: Annotated[int, typer.Option(help="Days of simulated history to push through")] = 120,
    probes: Annotated[int, typer.Option(help="Single POSTs timed for freshness")] = 50,
    batch_size: int = 1000,
    alert_deals: Annotated[int, typer.Option(help="Deals timed for alert delay")] = 40,
    alert_spread: Annotated[float, typer.Option(help="Seconds the alert thresholds span")]
    = 20.0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here")]
    = None,
    write_docs: Annotated[bool, typer.Option(help="Regenerate docs/BENCHMARKS.md")] = False,
) -> None:
    """Measure the event path next to its raw ceilings (reports only, never asserts)."""
    figures = run(days, probes, batch_size, alert_deals, alert_spread)
    report(figures)
    measured = result(figures, days, probes, batch_size, alert_deals)
    if json_path:
        json_path.write_text(json.dumps(measured, indent=2) + "\n")
        console.print(f"wrote {json_path}")
    if write_docs:
        DOCS.write_text(markdown(measured))
        console.print(f"wrote {DOCS}")


if __name__ == "__main__":
    typer.run(main)
