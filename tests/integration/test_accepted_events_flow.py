"""Whatever the API accepts, every step after it carries: generated events at the edges of
the contract go through the real API, relay, projector and alerter; every process stays
alive, and every accepted event is projected or dead-lettered with its reason. What cannot
be carried is refused at the door with a problem naming the field, never a 500."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from events.bounds import MAX_DEPTH
from tests import strategies
from tests.conftest import Stack, wait_until
from tests.topics import read_messages, read_records

pytestmark = pytest.mark.integration

EXAMPLES = 120  # generated events, one request each: about 15 s of posting
JSON = {"Content-Type": "application/json"}


def post(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/v1/events", content=body, headers=JSON)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text


def rep_joined(**data: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "rep.joined",
            "occurred_at": "2017-03-01T10:00:00+08:00",
            "data": {"rep_id": f"R-{uuid.uuid4().hex[:6]}", "name": "Li", "team_id": "T-1",
                     **data}}


def caught_up(client: httpx.Client, since: float) -> dict[str, Any] | None:
    """/healthz's progress once the relay, every projector partition and the alerter have
    reported, after wall time `since`, nothing left to do; None before."""
    units = client.get("/healthz").json().get("progress", {})
    after = time.time() - since - 0.2  # seconds; reports are rounded to a tenth
    ready = ("relay" in units and "alerter" in units
             and any(unit.startswith("projector:") for unit in units)
             and all(u["behind"] == 0 and u["seconds_since_report"] < after
                     for u in units.values()))
    return units if ready else None


def test_what_cannot_be_carried_is_refused_at_the_door_naming_the_field(stack: Stack) -> None:
    with stack.client() as client:
        for levels, accepted in ((MAX_DEPTH - 1, True), (MAX_DEPTH, False), (251, False),
                                 (252, False), (255, False), (1000, False)):
            nested = b"[" * levels + b"1" + b"]" * levels  # beyond what orjson writes
            response = post(client, orjson.dumps(rep_joined(x="NESTED")).replace(
                b'"NESTED"', nested))
            if accepted:
                assert response.status_code == 202, response.text
            else:
                assert_problem(response, 422)
                assert response.json()["errors"][0]["field"].startswith("data.x")
        assert_problem(post(client, orjson.dumps(rep_joined(x=["y" * 10_000] * 7))), 422, "data")
        # Lone surrogates are not Unicode: malformed JSON, refused before anything is read.
        for text in (b'"\\ud800"', b'"\\udfff x"', b'"a\\ud83d"'):
            body = orjson.dumps(rep_joined(x="NESTED")).replace(b'"NESTED"', text)
            assert_problem(post(client, body), 400)
        # Deeper than any JSON reader here goes: still a problem, not a 500.
        assert_problem(post(client, b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}"), 400)


def test_every_accepted_event_is_projected_or_dead_lettered_and_every_process_lives(
        stack: Stack, broker: Any) -> None:
    customer = f"C-{uuid.uuid4().hex[:6]}"
    accepted: list[str] = []
    refused: dict[int, int] = {}
    started = time.monotonic()
    with stack.client() as client:
        base = {"id": str(uuid.uuid4()), "type": "customer.created",
                "occurred_at": datetime(1900, 1, 1, tzinfo=UTC).isoformat(),
                "data": {"customer_id": customer}}
        assert post(client, orjson.dumps(base)).status_code == 202
        accepted.append(base["id"])

        @seed(21)
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
        @given(event=strategies.events(customer))
        def answered(event: dict[str, Any]) -> None:
            response = post(client, orjson.dumps(event))
            assert response.status_code < 500, response.text
            if response.status_code == 202:
                accepted.append(event["id"])
            else:  # refused by a rule (an earlier event of a subject) or a bound: a problem
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["errors"], response.text
                refused[response.status_code] = refused.get(response.status_code, 0) + 1

        answered()
        posted, done = time.monotonic() - started, time.time()
        units = wait_until(lambda: caught_up(client, done), timeout=90,
                           message=f"every process to catch up\n{stack.logs()}")
        health = client.get("/healthz")
    assert health.status_code == 200, health.text
    for name in ("api", "relay", "projector", "alerter"):
        assert stack.processes[name].poll() is None, f"{name} died\n{stack.logs()}"

    bootstrap = broker.bootstrap_servers
    relayed = {orjson.loads(r.value)["event"]["id"]
               for r in read_records(bootstrap, stack.env["EVENTS_TOPIC"])}
    dead = [(value, dict(headers)) for value, headers in
            read_messages(bootstrap, stack.env["DEAD_LETTER_TOPIC"])]
    assert all(headers.get("reason") and headers.get("source") for _, headers in dead), dead
    dead_at_relay = {int(headers["position"]) for _, headers in dead
                     if headers["source"] == b"relay"}
    missing = [i for i in accepted if i not in relayed]
    # An accepted event missing from the events topic was dead-lettered by the relay.
    assert len(missing) == len(dead_at_relay), (missing, dead)
    print(f"\n{EXAMPLES} generated events in {posted:.1f} s: {len(accepted)} accepted, "
          f"refused {refused}; {len(relayed)} relayed, {len(dead)} dead-lettered "
          f"({sorted({h['source'].decode() for _, h in dead})}); progress {units}")
    assert len(accepted) > EXAMPLES // 2, "most generated events should be accepted"


def store_directly(stack: Stack, envelope: dict[str, Any], kind: str, key: str) -> None:
    """Store an event as the ledger would, without the contract's check: what an older
    version accepted, or a bug lets through."""
    from pathlib import Path

    from eventsourcing.utils import get_topic

    from services import bootstrap
    from services.eventstore.ledger import SalesSubject, subject_id
    from services.settings import Settings

    ledger = bootstrap.ledger(Settings(database_url=stack.env["DATABASE_URL"],
                                       data_dir=Path(stack.env["DATA_DIR"])))
    try:
        ledger.events.put([SalesSubject.Created(
            originator_id=subject_id("default", kind, key), originator_version=1,
            timestamp=datetime.now(UTC), originator_topic=get_topic(SalesSubject),
            tenant="default", kind=kind, key=key, envelope=envelope)])
    finally:
        ledger.close()


def applied(stack: Stack) -> int:
    from redis import Redis

    key = f"{stack.env['REDIS_PREFIX']}:default:applied"
    value = Redis.from_url(stack.env["REDIS_URL"]).get(key)
    return int(value or 0)


def test_a_stored_event_the_relay_cannot_publish_is_dead_lettered_and_the_log_goes_on(
        stack: Stack, broker: Any) -> None:
    before, after = rep_joined(), rep_joined()
    deep = rep_joined()  # 252 levels: stored (the store's writer falls back), not publishable
    deep["tenant"] = "default"
    deep["data"]["x"] = strategies.deep(252, 1)
    with stack.client() as client:
        assert post(client, orjson.dumps(before)).status_code == 202
        store_directly(stack, deep, "rep", deep["data"]["rep_id"])
        assert post(client, orjson.dumps(after)).status_code == 202
        done = time.time()
        wait_until(lambda: applied(stack) >= 2, timeout=60,
                   message=f"the events either side to be projected\n{stack.logs()}")
        wait_until(lambda: caught_up(client, done), timeout=60,
                   message="every process to catch up")
        assert client.get("/healthz").status_code == 200
    dead = [dict(h) for _, h in read_messages(broker.bootstrap_servers,
                                              stack.env["DEAD_LETTER_TOPIC"])]
    assert len(dead) == 1, dead
    assert dead[0]["source"] == b"relay" and b"Recursion" in dead[0]["reason"], dead
    relayed = [orjson.loads(v)["event"]["id"]
               for v, _ in read_messages(broker.bootstrap_servers, stack.env["EVENTS_TOPIC"])]
    assert sorted(relayed) == sorted([before["id"], after["id"]])  # keyed: any partitions
    assert stack.processes["relay"].poll() is None, stack.logs()


def test_health_names_a_halted_process_within_the_stall_time_and_recovers(
        stack: Stack) -> None:
    with stack.client() as client:
        since = time.time()
        wait_until(lambda: caught_up(client, since), timeout=60,
                   message="every process to report")
        stack.kill("relay")
        assert post(client, orjson.dumps(rep_joined())).status_code == 202
        started = time.monotonic()
        halted = wait_until(lambda: (r := client.get("/healthz")).status_code == 503 and r,
                            timeout=30, message="/healthz to report the relay")
        noticed = time.monotonic() - started
        body = halted.json()
        assert body["progress"]["relay"]["state"] in ("silent", "stalled"), body
        assert "relay" in body["checks"]["progress"], body
        stack.start("relay")
        wait_until(lambda: client.get("/healthz").status_code == 200, timeout=60,
                   message="/healthz to recover once the relay is back")
    print(f"\nrelay halt reported by /healthz after {noticed:.1f} s")
