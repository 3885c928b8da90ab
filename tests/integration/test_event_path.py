"""Events posted to the API reach the funnel and breakdowns through the real
PostgreSQL event store, Tansu broker, faust projector and Redis — and every
number equals an independent pandas computation over the same events."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.signing import Signer
from services.simulate.world import simulate
from tests import oracle
from tests.conftest import Stack, samples, wait_until
from tests.oracles.compare import comparer
from tests.topics import read_all, read_messages

pytestmark = pytest.mark.integration

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
AMOUNT_FIELDS = {"open_amount", "won_value", "avg_won_value"}
START = datetime(2017, 1, 1, tzinfo=UTC)


def history(seed: int = 11, days: int = 75) -> list[dict[str, Any]]:
    return list(simulate(seed, START, START + timedelta(days=days)))


# Amounts as exact Decimals, rates and days to 1e-9, everything else as is.
comparable = comparer(AMOUNT_FIELDS)


def api_view(client: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return comparable(response.json())  # type: ignore[no-any-return]


def oracle_funnel(events: list[dict[str, Any]], **filters: str) -> dict[str, Any]:
    return comparable(oracle.funnel(events, stages=STAGES, filters=filters))  # type: ignore[no-any-return]


def oracle_breakdown(events: list[dict[str, Any]], by: str, **filters: str) -> dict[str, Any]:
    return comparable(oracle.breakdown(events, by=by, stages=STAGES, filters=filters))  # type: ignore[no-any-return]


def wait_for_projection(stack: Stack, events: list[dict[str, Any]], timeout: float = 120) -> None:
    expected = oracle_funnel(events)
    with stack.client() as client:
        try:
            wait_until(lambda: api_view(client, "/v1/funnel") == expected, timeout=timeout,
                       message="the funnel to equal the independent computation")
        except AssertionError:
            print(stack.logs())
            raise


def test_funnel_and_breakdowns_equal_an_independent_computation(stack: Stack) -> None:
    events = history()
    assert 2000 <= len(events) <= 10_000
    result = stack.post(events, batch_size=500)
    assert result.accepted == len(events)

    wait_for_projection(stack, events)

    middle = START.date() + timedelta(days=30)
    with stack.client() as client:
        reps = [r["key"] for r in api_view(client, "/v1/breakdown", by="rep")["rows"]]
        teams = [r["key"] for r in api_view(client, "/v1/breakdown", by="team")["rows"]]
        funnel_filters: list[dict[str, str]] = [
            {}, {"from": str(middle)}, {"to": str(middle)}, {"team": str(teams[0])},
            {"rep": str(reps[1])}, {"source": "referral"}, {"segment": "enterprise"},
            {"from": str(START.date()), "to": str(middle), "region": "east"},
        ]
        for filters in funnel_filters:
            assert api_view(client, "/v1/funnel", **filters) == oracle_funnel(events, **filters), \
                filters
        for by in ("rep", "team", "manager", "region", "source", "product", "segment", "month",
                   "quarter"):
            assert api_view(client, "/v1/breakdown", by=by) == oracle_breakdown(events, by), by
            filtered = {"from": str(middle), "team": str(teams[-1])}
            assert api_view(client, "/v1/breakdown", by=by, **filtered) == \
                oracle_breakdown(events, by, **filtered), (by, filtered)


def test_sending_the_same_events_again_changes_nothing(stack: Stack) -> None:
    events = history(seed=5, days=30)
    stack.post(events)
    again = stack.post(events[: len(events) // 2])
    assert again.duplicate == len(events) // 2 and again.accepted == 0
    wait_for_projection(stack, events)


def test_projections_survive_the_relay_being_killed_mid_stream(stack: Stack) -> None:
    events = history(seed=23, days=60)
    chunks = [events[i:i + 250] for i in range(0, len(events), 250)]
    assert len(chunks) >= 6
    kills = {1, len(chunks) - 3}
    for number, chunk in enumerate(chunks):
        stack.post(chunk, batch_size=250)
        if number in kills:
            stack.kill("relay")  # SIGKILL, mid-stream: no chance to stop cleanly
        elif number - 1 in kills:
            stack.start("relay")  # the chunk posted while it was dead waits in the store
    assert "relay" in stack.processes
    wait_for_projection(stack, events)


def test_a_batch_with_one_bad_event_stores_nothing_and_publishes_nothing(
        stack: Stack, broker: Any) -> None:
    good = history(seed=3, days=10)[:40]
    stack.post(good)
    wait_for_projection(stack, good)
    batch = [
        {"id": "new-1", "type": "deal.created", "occurred_at": "2017-02-01T10:00:00+08:00",
         "data": {"deal_id": "D-NEW", "owner_id": "R-001", "amount": "10"}},
        {"id": "new-2", "type": "deal.stage_changed", "occurred_at": "2017-02-02T10:00:00+08:00",
         "data": {"deal_id": "D-NEW", "stage": "no-such-stage"}},
        {"id": "new-3", "type": "deal.won", "occurred_at": "2017-02-03T10:00:00+08:00",
         "data": {"deal_id": "D-NEW"}},
    ]
    with stack.client() as client:
        response = client.post("/v1/events/batch", json=batch)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"] == [{"index": 1, "event_id": "new-2", "field": "data.stage",
                                  "message": problem["errors"][0]["message"]}]
    assert "no-such-stage" in problem["errors"][0]["message"]

    published = read_topic(broker.bootstrap_servers, stack.env["EVENTS_TOPIC"])
    assert sorted(published) == sorted(e["id"] for e in good)
    with stack.client() as client:
        assert api_view(client, "/v1/funnel") == oracle_funnel(good)


def _relayed(event: dict[str, Any], **changes: Any) -> bytes:
    import orjson

    return orjson.dumps({"schema": 1, "position": 10**9, "previous": 10**9 - 1, "kind": "deal",
                         "key": "D-P", "version": 1, "event": event, **changes})


_DEAL = {"id": "p-1", "type": "deal.created", "tenant": "default",
         "occurred_at": "2017-01-01T00:00:00+08:00", "data": {"deal_id": "D-P", "owner_id": "R"}}
POISON = {
    "garbage bytes": b"\x00\xffnot json",
    "JSON of the wrong shape": b'{"valid": "json", "wrong": "shape"}',
    "an unknown event type": _relayed({**_DEAL, "type": "deal.teleported"}),
    "a future message schema": _relayed(_DEAL, schema=2),
    "an event breaking its contract": _relayed({**_DEAL, "data": {"deal_id": "D-P"}}),
}
SIGNED_ELSEWHERE = _relayed({**_DEAL, "data": {"deal_id": "D-S", "owner_id": ""}})


def test_projectors_joining_and_leaving_the_group_mid_stream_lose_and_double_nothing(
        stack: Stack) -> None:
    # Each rebalance hands partitions over between fetches: the fetch in hand is written and
    # committed first, then the new owner goes on from there.
    events = history(seed=31, days=240)
    chunks = [events[i:i + 100] for i in range(0, len(events), 100)]

    def post(count: int) -> None:
        for _ in range(count):
            stack.post(chunks.pop(0), batch_size=100)
            time.sleep(0.2)  # pace: the rebalances happen while events stream

    def projected_by(name: str) -> float:
        try:
            return samples(f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics",
                           "salespulse_projected_events_total")
        except httpx.HTTPError:
            return 0  # still starting

    post(2)
    stack.start("second projector")  # joins: the partitions are split between the two
    while not projected_by("second projector"):
        assert len(chunks) > 10, "the second projector was not given partitions in time"
        post(1)
    stack.kill("projector", signal.SIGTERM)  # leaves cleanly: its partitions move
    post(5)
    stack.start("projector")  # joins again
    stack.kill("second projector")  # SIGKILL: its partitions move once its session ends
    post(len(chunks))
    wait_for_projection(stack, events)
    with stack.client() as client:
        for by in ("rep", "month"):
            assert api_view(client, "/v1/breakdown", by=by) == oracle_breakdown(events, by), by


def test_every_relayed_message_carries_the_relays_signature(stack: Stack, broker: Any) -> None:
    # What lets the projector fold it without checking it again (services/signing.py).
    events = history(seed=9, days=10)[:80]
    stack.post(events)
    wait_for_projection(stack, events)
    signer = Signer(stack.env["EVENTS_SIGNING_KEY"])
    relayed = read_messages(broker.bootstrap_servers, stack.env["EVENTS_TOPIC"])
    assert len(relayed) == len(events)
    assert all(signer.signed(value, headers) for value, headers in relayed)
    assert not any(Signer("another key").signed(value, headers) for value, headers in relayed)


def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_projector_carries_on(
        stack: Stack, broker: Any) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def poison() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        try:
            for value in POISON.values():
                await producer.send_and_wait(stack.env["EVENTS_TOPIC"], value=value, key=b"x")
            # Signed, but not by the relay's key: checked in full like any other message.
            await producer.send_and_wait(stack.env["EVENTS_TOPIC"], value=SIGNED_ELSEWHERE,
                                         key=b"x", headers=Signer("not the relay's key")
                                         .headers(SIGNED_ELSEWHERE))
        finally:
            await producer.stop()

    asyncio.run(poison())
    events = history(seed=9, days=10)[:60]
    stack.post(events)
    wait_for_projection(stack, events)
    def dead_letters() -> list[Any]:
        return read_topic(broker.bootstrap_servers, stack.env["DEAD_LETTER_TOPIC"], raw=True)

    wait_until(lambda: len(dead_letters()) >= len(POISON) + 1, timeout=30,
               message="dead letters")
    dead = dead_letters()
    assert len(dead) == len(POISON) + 1
    assert "alerter" in stack.processes and stack.processes["alerter"].poll() is None


def read_topic(bootstrap: str, topic: str, *, raw: bool = False) -> list[Any]:
    """Every message on `topic` now: event ids, or raw values."""
    values = read_all(bootstrap, topic)
    return values if raw else [json.loads(v)["event"]["id"] for v in values]


def test_health_reports_every_dependency_and_each_processs_progress(module_stack: Stack) -> None:
    def reported() -> Any:
        with module_stack.client() as client:
            body = client.get("/healthz").json()
        units = set(body.get("progress", ()))
        return body if {"relay", "alerter"} <= units and any(
            u.startswith("projector:") for u in units) else None

    body = wait_until(reported, timeout=30, message="the relay, projector and alerter to report")
    assert body["status"] == "ok"
    assert body["checks"] == {"kafka": "ok", "redis": "ok", "event_store": "ok", "progress": "ok"}
    assert {u["state"] for u in body["progress"].values()} == {"ok"}


def test_dates_are_checked(module_stack: Stack) -> None:
    with module_stack.client() as client:
        response = client.get("/v1/funnel", params={"from": "not-a-date"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.from"
