"""`salespulse-bench pipeline`: figures for the whole event path, measured, never asserted.

Each run starts its own stack (a Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set; the
event store in a throwaway PostgreSQL schema; a fresh Redis prefix), posts a simulated
history through the API, and reports:
- ingest: events/s accepted by `POST /v1/events/batch`;
- end to end: events/s from the first POST until the projections hold them all;
- freshness: from the 202 of a single POST to the change visible in `GET /v1/funnel`,
  idle, at a steady load (1,000 events/s) and at 80% of the run's ingest rate
  (`bench/freshness.py`), with the rate each load achieved and its lag;
- alert delay: from a condition becoming true to its SSE event, its webhook and each
  channel's receiver (`bench/alerts.py`, `bench/alert_channels.py`);
- the projector alone on the run's whole topic, and 1, 2, 4 of them in one group
  on an 8-partition copy of it (`bench/projector.py`);
- side by side with the raw ceilings of the same run (`bench/ceilings.py`):
  ingest vs raw PostgreSQL inserts, the relay vs a raw aiokafka producer, the
  projector and the rebuild vs a raw aiokafka consumer that only decodes.

`--repeat N` runs it all N times: every figure is the median with its min and max, and
each ratio is taken within a run before its median is taken.
The event store is always PostgreSQL here (DATABASE_URL, else the local default), so the
ingest ceiling uses the same driver.
`python -m bench.pipeline --json PATH --write-docs` also writes the figures out.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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

from bench import alert_channels as bench_alert_channels
from bench import alerts as bench_alerts
from bench import ceilings as bench_ceilings
from bench import freshness as bench_freshness
from bench import projector as bench_projector
from bench import query_docs as bench_query_docs
from projections.facts import Change, Record, apply
from services.bootstrap import issue_key
from services.broker import TansuBroker, free_port
from services.eventstore.ledger import SalesLedger
from services.processes import cpu_seconds, is_healthy, spawn
from services.relay import message
from services.settings import Settings
from services.simulate.arrival import late_and_early
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


@dataclass(frozen=True)
class Schema:
    """A throwaway PostgreSQL schema on `server` (a URL without a query)."""

    server: str
    name: str

    @property
    def database_url(self) -> str:
        return f"{self.server}?schema={self.name}"


@contextmanager
def throwaway_schema(prefix: str, command: str) -> Iterator[Schema]:
    """A fresh schema on DATABASE_URL's server (else the local default), dropped after."""
    postgres = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES
    if not postgres.startswith("postgres"):
        raise ValueError(f"{command} needs a PostgreSQL DATABASE_URL")
    schema = Schema(urlunparse(urlparse(postgres)._replace(query="")),
                    f"{prefix}_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(schema.server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema.name}")
    try:
        yield schema
    finally:
        with psycopg.connect(schema.server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema.name} CASCADE")


@dataclass(frozen=True)
class Load:
    """The paced loads: `steady_rate` events/s, then `max_fraction` of the run's ingest rate,
    `seconds` each; projectors started together for the scale-out figures."""

    steady_rate: float = 1000.0
    max_fraction: float = 0.8
    seconds: float = 20.0
    scale_out: tuple[int, ...] = (1, 2, 4)
    # The projectors alone are timed on the run's topic copied until it holds this many
    # events: a projector folds up to 20,000 a fetch, and a pace needs several fetches.
    projector_events: int = 200_000


def run(days: int, probes: int, batch_size: int, alert_deals: int = 40,
        alert_spread: float = 20.0, load: Load | None = None) -> dict[str, float]:
    """One measurement of every figure, on a stack of its own."""
    load = load or Load()
    figures = {"load_average_1m_start": os.getloadavg()[0]}
    with throwaway_schema("bench", "the bench (its ingest ceiling is psycopg)") as schema:
        figures.update(_run(schema, days, probes, batch_size, alert_deals, alert_spread,
                            load))
    figures["load_average_1m_end"] = os.getloadavg()[0]
    return figures


def _run(schema: Schema, days: int, probes: int, batch_size: int, alert_deals: int,
         alert_spread: float, load: Load) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="salespulse-bench-"))
    run_id = uuid.uuid4().hex[:8]
    env = {**os.environ, "REDIS_PREFIX": f"bench-{run_id}", "EVENTS_TOPIC": f"bench-{run_id}",
           "PROJECTOR_GROUP": f"bench-{run_id}", "DATA_DIR": str(work),
           "ALERTS_TOPIC": f"bench-alerts-{run_id}", "DEAD_LETTER_TOPIC": f"bench-dlq-{run_id}",
           "DATABASE_URL": schema.database_url,
           # Signed as `salespulse up` signs: the projector trusts what the relay signed.
           "EVENTS_SIGNING_KEY": os.environ.get("EVENTS_SIGNING_KEY") or uuid.uuid4().hex}
    # Serving before the alerter starts: it is told where the SMTP server is.
    receivers = bench_alert_channels.Receivers().__enter__()
    env.update(receivers.env())
    broker = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        broker = TansuBroker(log_path=work / "broker.log").start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    settings = Settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                        events_topic=env["EVENTS_TOPIC"], redis_prefix=env["REDIS_PREFIX"],
                        database_url=env["DATABASE_URL"], data_dir=work,
                        events_signing_key=env["EVENTS_SIGNING_KEY"])
    port = free_port()
    services = {name: spawn(args, env, work / f"{name}.log") for name, args in (
        ("api", ["api", "--port", str(port)]), ("relay", ["relay"]),
        ("projector", ["projector"]), ("alerter", ["alerter"]))}
    processes = list(services.values())
    pids = {name: process.pid for name, process in services.items()}
    if broker and broker.process:
        pids["broker"] = broker.process.pid
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, float] = {}
    try:
        _poll(lambda: is_healthy(url), 60, 0.2)
        key = issue_key(settings, "default", "admin", name="bench")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            end = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=days)
            events = list(simulate(42, end - timedelta(days=days), end, leads_per_day=12))
            kinds = Counter(e["type"] for e in events)
            expected = (kinds["deal.created"], kinds["activity.logged"], kinds["lead.created"])
            idle = _idle_rates(pids)
            cpu, cpu_at = _cpu(pids), time.monotonic()
            started = time.perf_counter()
            post_events(url, events, batch_size=batch_size, progress=True, headers=headers)
            posted = time.perf_counter()
            _poll(lambda: _totals(client) == expected, 600, 0.05)
            projected = time.perf_counter()
            spent, window = _settled(pids, cpu, cpu_at, idle)
            for name, seconds in spent.items():  # what each process spent per event
                figures[f"idle_cpu_share_{name}"] = idle[name]
                figures[f"ingest_cpu_us_per_event_{name}"] = max(
                    seconds - idle[name] * window, 0.0) * 1e6 / len(events)
            figures["events"] = len(events)
            figures["ingest_events_per_s"] = len(events) / (posted - started)
            figures["end_to_end_events_per_s"] = len(events) / (projected - started)
            figures["drain_after_last_post_s"] = projected - posted
            figures.update(_late_arrival(url, settings, events, batch_size, expected, figures))
            assert client.post("/v1/events", json=bench_freshness.probe_rep()).status_code \
                == 202
            figures.update(bench_freshness.idle(
                client, probes, lambda probing: track(probing, "freshness")))
            figures.update(_paced(client, url, headers, settings, figures, load))
        if alert_deals:
            figures.update(bench_alerts.measure(url, headers, deals=alert_deals,
                                                spread_seconds=alert_spread,
                                                settings=settings, receivers=receivers))
        bench_projector.stop(processes)  # the rest gets the machine to itself
        figures.update(_ceilings(settings, schema))
        figures.update(_projectors(env, settings, work, load.scale_out,
                                   load.projector_events))
    finally:
        bench_projector.stop(processes)
        receivers.__exit__(None, None, None)
        if broker:
            broker.stop()
        asyncio.run(bench_projector.forget(settings, settings.redis_prefix))
    return figures


LATE_TENANT = "late-feed"


def _late_arrival(url: str, settings: Settings, events: list[dict[str, Any]], batch_size: int,
                  expected: tuple[int, int, int], in_order: dict[str, float]
                  ) -> dict[str, float]:
    """The same history as a real feed delivers it, into a tenant of its own: 20% of the
    events up to 3 days late, 5% before their subject (held, then released). Its ingest and
    end-to-end rates beside the in-order run's, measured just before it on the same stack."""
    key = issue_key(settings, LATE_TENANT, "admin", name="bench-late")
    headers = {"Authorization": f"Bearer {key}"}
    arrival = late_and_early(events, seed=7, late=0.2, max_delay=timedelta(days=3),
                             early=0.05, tenant=LATE_TENANT)
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        started = time.perf_counter()
        result = post_events(url, arrival, batch_size=batch_size, progress=True,
                             headers=headers)
        posted = time.perf_counter()
        _poll(lambda: _totals(client) == expected, 600, 0.05)
        projected = time.perf_counter()
    ingest, end_to_end = len(events) / (posted - started), len(events) / (projected - started)
    return {"late_feed_held_on_arrival": result.held,
            "late_feed_ingest_events_per_s": ingest,
            "late_feed_end_to_end_events_per_s": end_to_end,
            "late_feed_ingest_ratio": ingest / in_order["ingest_events_per_s"],
            "late_feed_end_to_end_ratio": end_to_end / in_order["end_to_end_events_per_s"],
            "late_feed_fold_ratio": _fold_ratio(events, arrival)}


def _fold_ratio(events: list[dict[str, Any]], arrival: list[dict[str, Any]]) -> float:
    """The fact reducer's rate over the late feed's stored order against the sorted one's,
    in this process (best of three each, alternated)."""
    def messages(order: list[dict[str, Any]]) -> list[Change]:
        ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        for start in range(0, len(order), 1000):
            ledger.record(order[start:start + 1000], tenant="default")
        stored = ledger.recorder.select_notifications(0, 10_000_000, inclusive_of_start=False)
        return [Change.from_json(message(ledger, n, n.id - 1)[1]) for n in stored]

    def fold_seconds(changes: list[Change]) -> float:
        records: dict[tuple[str, str], Record] = {}
        began = time.perf_counter()
        for change in changes:
            updated = apply(records.get((change.kind, change.key)), change)
            if updated is not None:
                records[change.kind, change.key] = updated
        return time.perf_counter() - began

    ordered, late = messages(events), messages(arrival)
    best_ordered = best_late = math.inf
    for _ in range(3):
        best_ordered = min(best_ordered, fold_seconds(ordered))
        best_late = min(best_late, fold_seconds(late))
    return (len(events) / best_late) / (len(events) / best_ordered)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def _idle_rates(pids: dict[str, int], seconds: float = 2.0) -> dict[str, float]:
    """Each process's CPU, as a share of a core, with nothing to do (its polls)."""
    before = _cpu(pids)
    time.sleep(seconds)
    after = _cpu(pids)
    return {name: (after[name] - before[name]) / seconds for name in pids}


def _settled(pids: dict[str, int], since: dict[str, float], since_at: float,
             idle: dict[str, float], quiet: float = 0.05,
             timeout: float = 60.0) -> tuple[dict[str, float], float]:
    """CPU seconds each process has spent since `since` (read at `since_at`, monotonic), and
    the seconds since then, read once they are all back to idling (together within `quiet`
    of a core of their idle rate over half a second): the alerter may still be working
    through history when the read models already hold it."""
    deadline = time.monotonic() + timeout
    now = _cpu(pids)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        last, now = now, _cpu(pids)
        if sum(now.values()) - sum(last.values()) < (sum(idle.values()) + quiet) * 0.5:
            break
    return {name: now[name] - since[name] for name in pids}, time.monotonic() - since_at


def _applied(settings: Settings) -> int:
    """Events the run's read models hold, all tenants."""
    held = asyncio.run(bench_projector.applied_per_tenant(settings, settings.redis_prefix))
    return sum(held.values())


def _paced(client: httpx.Client, url: str, headers: dict[str, str], settings: Settings,
           figures: dict[str, float], load: Load) -> dict[str, float]:
    """Freshness at the steady rate, then at a fraction of this run's ingest rate."""
    near_max = load.max_fraction * figures["ingest_events_per_s"]
    counts = [math.ceil(rate * load.seconds) for rate in (load.steady_rate, near_max)]
    world = bench_freshness.LoadWorld(42, sum(counts))
    measured: dict[str, float] = {}
    for label, rate in (("steady", load.steady_rate), ("near_max", near_max)):
        console.print(f"freshness under load: {rate:,.0f} events/s for {load.seconds:g} s")
        measured.update(bench_freshness.paced(client, url, headers, world, rate, load.seconds,
                                              lambda: _applied(settings), label))
    return measured


def _ceilings(settings: Settings, schema: Schema) -> dict[str, float]:
    """The relay, the rebuild and every raw ceiling, one after the other, on the run's data."""
    console.print("ceilings: PostgreSQL inserts, relay, producer, rebuild, consumer")
    ingest = bench_ceilings.postgres_insert(schema.server, schema.name)
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


def _projectors(env: dict[str, str], settings: Settings, work: Path,
                scale_out: tuple[int, ...], events: int) -> dict[str, float]:
    """The projector alone on the run's topic, then 1, 2, 4… of them on an
    8-partition copy of it, each in a fresh group until it applied every event."""
    applied = asyncio.run(bench_projector.applied_per_tenant(settings, settings.redis_prefix))
    figures = {"projected_events": float(sum(applied.values()))}
    # Long enough to time a pace: a projector folds up to 20,000 records a fetch.
    copies = max(1, math.ceil(events / max(sum(applied.values()), 1)))
    expected = {**applied, **{bench_ceilings.copy_tenant(tenant, k): count
                              for tenant, count in applied.items() for k in range(1, copies)}}
    topic, _ = asyncio.run(bench_ceilings.copy_topic(settings, "alone", copies=copies))
    figures["projector_topic_events"] = float(sum(expected.values()))
    figures["projector_ceiling_events_per_s"] = asyncio.run(
        bench_ceilings.raw_consumer(settings, topic)).per_second
    console.print(f"the projector alone on the run's topic, {copies} times over")
    alone = bench_projector.measure(settings, env, topic, expected, work)
    figures.update({"projector_alone_events": float(alone.events),
                    "projector_alone_from_start_events_per_s": alone.from_start_per_s,
                    "projector_alone_steady_events_per_s": alone.steady_per_s})
    console.print("the rebuild runner on the same copy: one process, then one per CPU")
    alone_rebuilt = asyncio.run(bench_ceilings.rebuild_rate(settings, topic))
    spread = asyncio.run(bench_ceilings.rebuild_rate(settings, topic, processes=0))
    figures.update({"rebuild_copy_events_per_s": alone_rebuilt.per_second,
                    "rebuild_copy_steady_events_per_s": alone_rebuilt.steady_per_second,
                    "rebuild_copy_spread_events_per_s": spread.per_second,
                    "rebuild_copy_spread_processes": float(spread.processes)})
    if not scale_out:
        return figures
    topic, _ = asyncio.run(bench_ceilings.copy_topic(settings, "scale", SCALE_PARTITIONS,
                                                     copies=copies))
    figures["scale_out_ceiling_events_per_s"] = asyncio.run(
        bench_ceilings.raw_consumer(settings, topic)).per_second
    for processes in scale_out:
        console.print(f"scale-out: {processes} projector(s) on {SCALE_PARTITIONS} partitions")
        measured = bench_projector.measure(settings, env, topic, expected, work, processes)
        name = f"scale_out_{processes}"
        figures.update({f"{name}_events": float(measured.events),
                        f"{name}_from_start_events_per_s": measured.from_start_per_s,
                        f"{name}_steady_events_per_s": measured.steady_per_s})
    return figures


CONSUMER = "raw aiokafka consumer, getmany + orjson.loads"
# (figure, salespulse key, ceiling key, how the ceiling is measured)
COMPARISONS = [
    ("ingest: POST /v1/events/batch", "ingest_events_per_s", "ingest_ceiling_events_per_s",
     "psycopg executemany of the store's own rows into a throwaway table, "
     f"one transaction per {bench_ceilings.ROWS_PER_TRANSACTION} rows"),
    ("relay: event store to Kafka (backlog)", "relay_events_per_s",
     "relay_ceiling_events_per_s",
     "raw aiokafka producer sending the relay's messages to a new topic, in batches "
     "filled per partition as the relay sends"),
    ("projection: projector alone, steady", "projector_alone_steady_events_per_s",
     "projector_ceiling_events_per_s", f"{CONSUMER}, on the projector's copy"),
    ("projection: projector alone, from process start",
     "projector_alone_from_start_events_per_s", "projector_ceiling_events_per_s",
     f"{CONSUMER}, on the projector's copy"),
    ("projection: end to end (POST to funnel)", "end_to_end_events_per_s",
     "projection_ceiling_events_per_s", CONSUMER),
    ("projection: rebuild runner", "rebuild_events_per_s",
     "projection_ceiling_events_per_s", CONSUMER),
    ("projection: rebuild runner, steady, on the projector's copy",
     "rebuild_copy_steady_events_per_s", "projector_ceiling_events_per_s",
     f"{CONSUMER}, on the projector's copy (the projector alone's ceiling: rebuild and "
     "live side by side)"),
    ("projection: rebuild runner, one process per CPU, whole call, on the projector's copy",
     "rebuild_copy_spread_events_per_s", "projector_ceiling_events_per_s",
     f"{CONSUMER}, on the projector's copy"),
]
SCALE_PARTITIONS = 8


def scale_out_of(figures: dict[str, float]) -> list[int]:
    """The projector counts the scale-out was measured with."""
    return sorted(int(name.split("_")[2]) for name in figures
                  if name.startswith("scale_out_") and name.endswith("_steady_events_per_s"))


def _specs(figures: dict[str, float]) -> list[tuple[str, str, str, str]]:
    return [*COMPARISONS, *(
        (f"scale-out: {n} projector{'s' if n > 1 else ''}, {SCALE_PARTITIONS} "
         "partitions, steady", f"scale_out_{n}_steady_events_per_s",
         "scale_out_ceiling_events_per_s", f"{CONSUMER}, on the {SCALE_PARTITIONS}-partition "
         "copy") for n in scale_out_of(figures))]


def _median(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else math.nan


def _spread(values: list[float]) -> list[float]:
    known = [v for v in values if not math.isnan(v)]
    return [min(known), max(known)] if known else [math.nan, math.nan]


def summarise(runs: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Every figure's median over the runs, and its [min, max]."""
    names = list(dict.fromkeys(name for figures in runs for name in figures))
    values = {name: [figures[name] for figures in runs if name in figures] for name in names}
    return ({name: _median(v) for name, v in values.items()},
            {name: _spread(v) for name, v in values.items()})


def comparisons(runs: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Each salespulse rate next to its ceiling: the ratio is taken within each run (against
    the ceiling of that run), then its median over the runs is reported."""
    rows = []
    for figure, ours, ceiling, method in _specs(runs[0]):
        rates = [figures[ours] for figures in runs]
        limits = [figures[ceiling] for figures in runs]
        ratios = [rate / limit if limit else 0.0 for rate, limit in zip(rates, limits,
                                                                       strict=True)]
        rows.append({"figure": figure, "salespulse_events_per_s": _median(rates),
                     "salespulse_spread": _spread(rates),
                     "ceiling_events_per_s": _median(limits), "ceiling_spread": _spread(limits),
                     "ratio": _median(ratios), "ratio_spread": _spread(ratios),
                     "ratios": ratios, "ceiling": method})
    return rows


def machine() -> dict[str, Any]:
    # The load average says how much else shared the CPUs while the run measured.
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1m": os.getloadavg()[0]}


def result(runs: list[dict[str, float]], parameters: dict[str, Any]) -> dict[str, Any]:
    figures, spread = summarise(runs)
    return {"machine": machine(), "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": parameters, "runs": runs, "figures": figures, "spread": spread,
            "comparisons": comparisons(runs)}


def _with_spread(value: float, spread: list[float], fmt: str = "{:,.0f}") -> str:
    if spread[0] == spread[1] or math.isnan(spread[0]):
        return fmt.format(value)
    return f"{fmt.format(value)} ({fmt.format(spread[0])}–{fmt.format(spread[1])})"


def report(measured: dict[str, Any]) -> None:
    figures, spread = measured["figures"], measured["spread"]
    runs = len(measured["runs"])
    table = Table(title=f"salespulse: the whole event path on this machine, {runs} run(s)")
    for column in ("figure", "median", "min", "max"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, value in figures.items():
        table.add_row(name, f"{value:,.1f}", f"{spread[name][0]:,.1f}",
                      f"{spread[name][1]:,.1f}")
    console.print(table)
    side = Table(title="salespulse next to the raw ceiling, ratios taken within each run")
    for column in ("figure", "salespulse ev/s", "ceiling ev/s", "ratio (min–max)"):
        side.add_column(column, justify="left" if column == "figure" else "right")
    for row in measured["comparisons"]:
        side.add_row(row["figure"], f"{row['salespulse_events_per_s']:,.0f}",
                     f"{row['ceiling_events_per_s']:,.0f}",
                     _with_spread(row["ratio"], row["ratio_spread"], "{:.3f}"))
    console.print(side)
    for line in _load_verdicts(measured):
        console.print(line)


def _load_verdicts(measured: dict[str, Any]) -> list[str]:
    """One line per paced load: kept up, or fell behind (and by how much), per run."""
    lines = []
    for label in LOAD_LABELS:
        name = f"freshness_{label}"
        for n, figures in enumerate(measured["runs"], 1):
            if f"{name}_kept_up" not in figures:
                continue
            target = figures[f"{name}_target_events_per_s"]
            achieved = figures[f"{name}_achieved_events_per_s"]
            lag_end = figures[f"{name}_lag_end_events"]
            if figures[f"{name}_kept_up"]:
                state = "kept up"
            elif achieved < 0.95 * target:
                state = "FELL BEHIND: the API did not accept the asked rate"
            else:
                state = "FELL BEHIND: the read models lagged more than a second of load"
            lines.append(
                f"run {n}, load {label} ({target:,.0f} events/s asked): {state}; "
                f"{achieved:,.0f} events/s achieved, {lag_end:,.0f} events not yet applied "
                f"when it stopped (at most {figures[f'{name}_lag_max_events']:,.0f}), caught "
                f"up {figures[f'{name}_drain_s']:,.1f} s later")
    return lines


LOAD_LABELS = ("steady", "near_max")


def markdown(measured: dict[str, Any]) -> str:
    """The `salespulse-bench pipeline` part of docs/BENCHMARKS.md, from one `--repeat N` result."""
    box, params = measured["machine"], measured["parameters"]
    figures, spread, runs = measured["figures"], measured["spread"], measured["runs"]
    loads = ", ".join(f"{r['load_average_1m_start']:.2f} → {r['load_average_1m_end']:.2f}"
                      for r in runs)
    lines = [
        "# Benchmarks", "",
        "Generated by `python -m bench.pipeline --write-docs`;",
        "do not edit by hand down to the `bench-query` section. Every ratio is taken against",
        "a ceiling measured in the same run, on the same stack (Tansu broker, PostgreSQL,",
        "Redis on this machine); each run starts a stack of its own.", "",
        f"Machine: {box['nproc']} CPUs (nproc), Python {box['python']}, {box['platform']}.",
        f"{len(runs)} run(s); 1-minute load average at the start → end of each: {loads}",
        "(the machine is shared: other work on it lowers every figure, ceilings included).",
        f"Measured {measured['measured_at']} with `--repeat {params['repeat']} --days "
        f"{params['days']} --probes {params['probes']} --batch-size {params['batch_size']} "
        f"--alert-deals {params['alert_deals']} --steady-rate {params['steady_rate']:g} "
        f"--max-fraction {params['max_fraction']:g} --pace-seconds "
        f"{params['pace_seconds']:g}"
        + "".join(f" --scale-out {n}" for n in params["scale_out"]) + "`.", "",
        "Each figure: the median of the runs, with (min–max) when they differ. Ratios: taken",
        "within each run, then their median.", "",
        "## Side by side with the raw ceiling", "",
        "| figure | salespulse (ev/s) | ceiling (ev/s) | ratio | ceiling measured as |",
        "|---|---:|---:|---:|---|",
    ]
    for row in measured["comparisons"]:
        lines.append(f"| {row['figure']} | "
                     f"{_with_spread(row['salespulse_events_per_s'], row['salespulse_spread'])}"
                     f" | {_with_spread(row['ceiling_events_per_s'], row['ceiling_spread'])} | "
                     f"{_with_spread(row['ratio'], row['ratio_spread'], '{:.3f}')} | "
                     f"{row['ceiling']} |")

    def cell(name: str, fmt: str = "{:,.0f}") -> str:
        return _with_spread(figures[name], spread[name], fmt) if name in figures else "–"

    shares = [(name.removeprefix("ingest_cpu_us_per_event_"), name) for name in figures
              if name.startswith("ingest_cpu_us_per_event_")]
    if shares:
        lines += ["", "## CPU per event while history is ingested", "",
                  "Each process's CPU from the first POST of the history until the stack is "
                  "back to idling, less what it spends idle (its polls) over that time, per "
                  "event of the history: on the two cores they share, this is what bounds "
                  "the ingest rate of the whole stack.", "",
                  "| process | CPU µs per event | idle, share of a core |", "|---|---:|---:|"]
        lines += [f"| {process} | {cell(name, '{:,.1f}')} | "
                  f"{cell(f'idle_cpu_share_{process}', '{:.3f}')} |" for process, name in shares]
        total = sum(figures[name] for _, name in shares)
        lines.append(f"| all of them (medians summed) | {total:,.1f} | "
                     f"{sum(figures[f'idle_cpu_share_{p}'] for p, _ in shares):.3f} |")

    lines += ["", "## Freshness under load", "",
              "From the 202 of one POST to the change visible in `GET /v1/funnel`, while "
              "simulated events of the same tenant are posted in batches every "
              f"{bench_freshness.TICK_S * 1000:g} ms (`idle`: nothing else posting). Lag: "
              "events accepted and not yet applied to the read models.", "",
              "| load | asked (ev/s) | achieved (ev/s) | p50 ms | p99 ms | max ms | probes | "
              "unseen | lag at the end | max lag | caught up after (s) | runs kept up |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| idle | – | – | {cell('freshness_p50_ms')} | {cell('freshness_p99_ms')} | "
              f"{cell('freshness_max_ms')} | {params['probes']} | "
              f"{cell('freshness_probes_unseen')} | – | – | – | – |"]
    for label in LOAD_LABELS:
        name = f"freshness_{label}"
        if f"{name}_kept_up" not in figures:
            continue
        kept = sum(int(r[f"{name}_kept_up"]) for r in runs)
        lines.append(
            f"| {label.replace('_', ' ')} | {cell(f'{name}_target_events_per_s')} | "
            f"{cell(f'{name}_achieved_events_per_s')} | {cell(f'{name}_p50_ms')} | "
            f"{cell(f'{name}_p99_ms')} | {cell(f'{name}_max_ms')} | "
            f"{cell(f'{name}_probes')} | {cell(f'{name}_probes_unseen')} | "
            f"{cell(f'{name}_lag_end_events')} | {cell(f'{name}_lag_max_events')} | "
            f"{cell(f'{name}_drain_s', '{:,.1f}')} | {kept} of {len(runs)} |")
    lines += [f"- {line}" for line in _load_verdicts(measured)]
    counts = scale_out_of(figures)
    if counts:
        lines += ["", f"## Scale-out: projectors in one group, {SCALE_PARTITIONS} "
                  "partitions", "",
                  f"The run's topic copied by key to a {SCALE_PARTITIONS}-partition topic; N "
                  "projector processes started together in a fresh group. Ceiling: "
                  f"{CONSUMER} on that copy: {cell('scale_out_ceiling_events_per_s')} ev/s.",
                  "", "| projectors | from process start (ev/s) | steady (ev/s) | steady / "
                  "ceiling |", "|---:|---:|---:|---:|"]
        ratios = {row["figure"]: row for row in measured["comparisons"]}
        for n, spec in zip(counts, _specs(figures)[len(COMPARISONS):], strict=True):
            row = ratios[spec[0]]
            lines.append(f"| {n} | {cell(f'scale_out_{n}_from_start_events_per_s')} | "
                         f"{cell(f'scale_out_{n}_steady_events_per_s')} | "
                         f"{_with_spread(row['ratio'], row['ratio_spread'], '{:.3f}')} |")
    lines += ["", "## Every figure", "", "| figure | median | min | max |",
              "|---|---:|---:|---:|"]
    lines += [f"| {name} | {value:,.1f} | {spread[name][0]:,.1f} | {spread[name][1]:,.1f} |"
              for name, value in figures.items()]
    lines += ["", "## How each figure is measured", "",
              "- **ingest**: simulated history POSTed in batches through "
              "`POST /v1/events/batch`, events / wall time of the POSTs.",
              "- **ingest ceiling**: the event store's own rows (same sizes) read back and "
              "inserted with psycopg `executemany` (not COPY) into a throwaway table of the "
              "same shape (primary key and notification id), one transaction per 1,000 rows.",
              "- **CPU per event**: user + system time of each process (`/proc/PID/stat`, "
              "all its threads) from the first POST of the history until the stack is back "
              "to idling (its processes together within 5% of a core of their idle rate "
              "over half a second), less its idle rate (measured over 2 s before the "
              "POSTs) times that span, divided by the events of the history; PostgreSQL's "
              "and Redis's own processes are not in it.",
              "- **relay**: the real `Relay` draining the whole store of the run onto a new "
              "topic (its position kept in memory), from start until the last batch is "
              "acknowledged.",
              "- **relay ceiling**: the events topic's messages (key and value bytes) sent by "
              "a raw aiokafka producer with the relay's settings to a new topic, in batches "
              "it fills per partition (`services.kafka.send_batched`, as the relay sends), "
              "awaiting the acknowledgements every 1,000 messages like the relay.",
              "- **projection (projector alone)**: once the stack is stopped and the "
              "run's topic holds every event (history, probes, loads, alert deals), it is "
              "copied, with its signatures, until the copy holds `--projector-events` "
              "(copy k under tenant `{tenant}~k`, re-signed: a projector folds up to "
              "20,000 events a fetch, and a pace takes several). A "
              "`salespulse projector` process starts in a fresh consumer group on a "
              "throwaway Redis prefix, marked built beforehand (an unbuilt prefix would make "
              "it rebuild through the rebuild runner instead of its live path). Timed until "
              "`FactStore.applied` holds every event of the copy: from "
              "process start (interpreter, imports, group join) and steady (from the first "
              "applied batch seen to the last event; 0 if one batch held them all). Its "
              "ceiling: the raw consumer on the same copy.",
              "- **projection (end to end)**: events / time from the first POST of the "
              "history until the funnel holds them all; bounded by ingest and relay too.",
              "- **projection (rebuild runner)**: `services.rebuild.rebuild` of the events "
              "topic into a throwaway Redis prefix (same reducer as the projector), the "
              "whole call. Once more on the projector's copy, after the projector alone, "
              "timed on the projector's clock: from its first batch folded (its write "
              "sent) to its last write acknowledged, over the events after that batch; "
              "then as deployed, the partitions shared out between one process per CPU "
              "(`REBUILD_PROCESSES`), timed as a whole call, helper processes' start "
              "included.",
              "- **projection ceiling**: a raw aiokafka consumer reading the same topic with "
              "`getmany` and `orjson.loads` of each message, nothing else.",
              "- **freshness**: a probe posts one deal owned by a rep nothing else uses and "
              "polls `GET /v1/funnel?rep=…` until it counts; under load, probes follow each "
              f"other {bench_freshness.PROBE_GAP_S * 1000:g} ms apart while a thread posts "
              "the live simulated world at the asked rate (`steady`: `--steady-rate`; "
              "`near max`: `--max-fraction` of the same run's ingest rate). A load keeps up "
              "when it achieved at least 95% of its rate and less than one second of it was "
              "waiting to be applied when it stopped. The probe polls back to back, and "
              "under load each poll finds a new revision, so the API rebuilds its snapshot "
              "for nearly every poll: the probe is one busy dashboard.",
              "- **scale-out**: as the projector alone, on the 8-partition copy, with N "
              "processes.",
              "- alert delay: see `bench/alerts.py` and `docs/ALERTS.md`.", "",
              "How each hot path is built, and why: `docs/PERFORMANCE.md`.", ""]
    return "\n".join(lines)


def with_query_section(generated: str, existing: str) -> str:
    """`generated` followed by what `existing` holds from the `bench-query` section on (its
    figures and the hand-written reading after them), which `bench` does not measure."""
    at = existing.find(bench_query_docs.BEGIN)
    if at < 0:
        return generated
    return generated.rstrip("\n") + "\n\n" + existing[at:]


def main(
    days: Annotated[int, typer.Option(help="Days of simulated history to push through")] = 120,
    probes: Annotated[int, typer.Option(help="Single POSTs timed for freshness")] = 50,
    batch_size: int = 1000,
    alert_deals: Annotated[int, typer.Option(help="Deals timed for alert delay")] = 40,
    alert_spread: Annotated[float, typer.Option(help="Seconds the alert thresholds span")]
    = 20.0,
    steady_rate: Annotated[float, typer.Option(
        help="Events/s of the steady load freshness is measured under")] = 1000.0,
    max_fraction: Annotated[float, typer.Option(
        help="The second load, as a fraction of the run's measured ingest rate")] = 0.8,
    pace_seconds: Annotated[float, typer.Option(help="Seconds each load runs")] = 20.0,
    projector_events: Annotated[int, typer.Option(
        help="Events the projectors alone are timed on (the run's topic copied)")] = 200_000,
    scale_out: Annotated[list[int] | None, typer.Option(
        help="Projector processes to measure together on an 8-partition topic (repeat; "
             "default 1, 2 and 4)")] = None,
    repeat: Annotated[int, typer.Option(help="Runs; figures are their medians")] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures here")]
    = None,
    write_docs: Annotated[bool, typer.Option(help="Regenerate docs/BENCHMARKS.md")] = False,
) -> None:
    """Measure the event path next to its raw ceilings (reports only, never asserts)."""
    load = Load(steady_rate, max_fraction, pace_seconds,
                tuple(scale_out) if scale_out is not None else Load.scale_out,
                projector_events)
    if json_path:  # its folder made now: a run of minutes must not be lost at the end
        json_path.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in range(repeat):
        console.print(f"run {n + 1} of {repeat}")
        runs.append(run(days, probes, batch_size, alert_deals, alert_spread, load))
    measured = result(runs, {"repeat": repeat, "days": days, "probes": probes,
                             "batch_size": batch_size, "alert_deals": alert_deals,
                             "steady_rate": steady_rate, "max_fraction": max_fraction,
                             "pace_seconds": pace_seconds, "scale_out": list(load.scale_out),
                             "projector_events": projector_events})
    report(measured)
    if json_path:
        json_path.write_text(json.dumps(measured, indent=2) + "\n")
        console.print(f"wrote {json_path}")
    if write_docs:
        DOCS.write_text(with_query_section(markdown(measured),
                                           DOCS.read_text() if DOCS.exists() else ""))
        console.print(f"wrote {DOCS}")


if __name__ == "__main__":
    typer.run(main)
