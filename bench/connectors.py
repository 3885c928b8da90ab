"""How fast each CRM connector takes notifications on this machine (prints, never asserts).

    python -m bench.connectors [--days 180] [--database-url postgresql://127.0.0.1:5432/test]

A seeded simulated history is rendered as each CRM sends it (services/simulate/crm.py) and
measured three ways, in a fresh PostgreSQL schema dropped afterwards:

- map: the pure mapping alone (notifications/s);
- record: mapping and the ledger (`intake.record`), in each connector's own batches:
  HubSpot 100 per request, Pipedrive one per request, a Kafka fetch of 500 for Salesforce
  CDC and the ingest topic (what the consumer does per fetch, without the broker);
- http: HubSpot's signed batches and Pipedrive's single notifications posted to a spawned
  `salespulse api`, one client, as each CRM delivers (the figure an integrator sees).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import psycopg

from services.broker import free_port
from services.connectors import hubspot, intake, pipedrive, salesforce_cdc
from services.connectors.mapping import DEFAULTS, Mapped
from services.processes import spawn, wait_until_healthy
from services.settings import Settings
from services.simulate.crm import (
    as_hubspot,
    as_pipedrive,
    as_salesforce_cdc,
    batches,
    signed_request,
)
from services.simulate.world import simulate

PORTAL, COMPANY, SECRET = 62515, 555, "bench-secret"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def _schema(database_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{database_url}?schema={schema}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _rate(count: int, seconds: float) -> str:
    return f"{count:>6} in {seconds:6.2f} s = {count / seconds:>8,.0f}/s"


def _sources(days: int) -> dict[str, tuple[list[Any], Callable[[Any], Mapped], int]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    history = list(simulate(9, start, start + timedelta(days=days)))
    ingest = [{k: v for k, v in e.items() if k != "tenant"} for e in history]
    return {
        "hubspot": (as_hubspot(history, PORTAL),
                    lambda n: hubspot.map_notification(n, DEFAULTS["hubspot"]), 100),
        "pipedrive": (as_pipedrive(history, COMPANY),
                      lambda n: pipedrive.map_webhook(n, DEFAULTS["pipedrive"]), 1),
        "salesforce": (as_salesforce_cdc(history),
                       lambda n: salesforce_cdc.map_change_event(n, DEFAULTS["salesforce"]), 500),
        "ingest": (ingest, lambda e: Mapped(str(e["id"]), e, events=(e,)), 500),
    }


def measure_map(sources: dict[str, Any]) -> None:
    for name, (items, mapper, _batch) in sources.items():
        if name == "ingest":
            continue
        began = time.perf_counter()
        for _ in range(3):
            for item in items:
                mapper(item)
        _say(f"map     {name:<10} {_rate(3 * len(items), time.perf_counter() - began)}")


def measure_record(sources: dict[str, Any], database_url: str) -> None:
    from services import bootstrap

    settings = Settings(database_url=database_url)
    ledger = bootstrap.ledger(settings)
    try:
        for name, (items, mapper, size) in sources.items():
            outcomes: dict[str, int] = {}
            began = time.perf_counter()
            for start in range(0, len(items), size):
                mapped = [mapper(item) for item in items[start:start + size]]
                for result in intake.record(ledger, f"bench-{name}", mapped,
                                            tz=settings.tenant_timezone,
                                            hold_for=settings.hold_for):
                    outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            _say(f"record  {name:<10} {_rate(len(items), time.perf_counter() - began)}"
                 f"  (batches of {size}; {outcomes})")
    finally:
        ledger.close()


def measure_http(sources: dict[str, Any], database_url: str) -> None:
    from services.bootstrap import issue_key

    with TemporaryDirectory() as data_dir:
        env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": data_dir,
               "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}", "KAFKA_BOOTSTRAP_SERVERS": ""}
        admin = issue_key(Settings(database_url=database_url, data_dir=Path(data_dir)),
                          "default", "admin")
        url = f"http://127.0.0.1:{free_port()}"
        api = spawn(["api", "--port", url.rsplit(":", 1)[1]], env, Path(data_dir) / "api.log")
        try:
            if not wait_until_healthy(url, api, 60):
                _say("http    the API did not start")
                return
            with httpx.Client(base_url=url, timeout=60,
                              headers={"Authorization": f"Bearer {admin}"}) as client:
                client.put("/v1/connectors/hubspot/mapping", json={"account": str(PORTAL)})
                client.put("/v1/connectors/hubspot/credentials", json={"app_secret": SECRET})
                client.put("/v1/connectors/pipedrive/credentials",
                           json={"username": "bench", "password": SECRET})
            with httpx.Client(timeout=60) as http:
                items = sources["hubspot"][0]
                began = time.perf_counter()
                for batch in batches(items):
                    body, headers = signed_request(url + "/v1/connectors/hubspot", SECRET, batch)
                    http.post(url + "/v1/connectors/hubspot", content=body,
                              headers=headers).raise_for_status()
                _say(f"http    hubspot    {_rate(len(items), time.perf_counter() - began)}"
                     "  (signed requests of 100)")
                items = sources["pipedrive"][0]
                began = time.perf_counter()
                for note in items:
                    http.post(url + "/v1/connectors/pipedrive", json=note,
                              auth=("bench", SECRET)).raise_for_status()
                _say(f"http    pipedrive  {_rate(len(items), time.perf_counter() - began)}"
                     "  (one notification a request)")
        finally:
            api.terminate()
            api.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--database-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    sources = _sources(args.days)
    _say(f"{args.days} simulated days: " + ", ".join(
        f"{name} {len(items)}" for name, (items, _m, _b) in sources.items()))
    measure_map(sources)
    with _schema(args.database_url) as url:
        measure_record(sources, url)
    with _schema(args.database_url) as url:
        measure_http(sources, url)


if __name__ == "__main__":
    main()
