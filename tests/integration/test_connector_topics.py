"""The Kafka connectors through the real stack: contract events produced to the ingest topic
are stored as the batch API stores them, refusals reach the refused topic with the problem
and the original message; Salesforce CDC change events on their topic become deals, a
replay changes nothing and what cannot be mapped is dead-lettered (issue #26)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.processes import spawn
from services.simulate.crm import hubspot_deal_id
from tests.conftest import Stack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def connectors(stack: Stack) -> Iterator[dict[str, str]]:
    run = uuid.uuid4().hex[:8]
    topics = {"INGEST_TOPIC": f"ingest-{run}", "INGEST_REFUSED_TOPIC": f"refused-{run}",
              "CONNECTORS_GROUP": f"connectors-{run}",
              "SALESFORCE_CDC_TOPICS": f"cdc-{run}=default"}
    stack.env.update(topics)
    process = spawn(["connectors"], stack.env, stack.log_dir / "connectors.log")
    stack.processes["connectors"] = process
    yield topics


def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes, list[tuple[str, bytes]]]]
             ) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for value, headers in messages:
                # One key: one partition, so the messages are read in the order produced.
                await producer.send(topic, value, key=b"k", headers=headers or None)
            await producer.flush()
        finally:
            await producer.stop()
    asyncio.run(send())


def _read(bootstrap: str, topic: str, count: int) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                    auto_offset_reset="earliest")
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            for _ in range(60):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    out += [orjson.loads(r.value) for r in records]
                if len(out) >= count:
                    break
        finally:
            await consumer.stop()
        return out
    return asyncio.run(read())


def _get(stack: Stack, path: str, **params: Any) -> Any:
    with stack.client() as client:
        answer = client.get(path, params=params)
    return answer.json() if answer.status_code == 200 else None


def test_the_ingest_topic_stores_events_and_sends_refusals_with_their_problem(
        stack: Stack, connectors: dict[str, str]) -> None:
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    good = [
        {"id": "k-rep", "type": "rep.joined", "tenant": "default",
         "occurred_at": "2024-01-01T00:00:00Z",
         "data": {"rep_id": "R-9", "name": "Kai", "team_id": "T-9"}},
        {"id": "k-deal", "type": "deal.created", "occurred_at": "2024-01-02T00:00:00Z",
         "data": {"deal_id": "D-9", "owner_id": "R-9", "amount": "500"}},
        {"id": "k-won", "type": "deal.won", "tenant": "default",
         "occurred_at": "2024-01-09T00:00:00Z", "data": {"deal_id": "D-9"}},
    ]
    bad_won = {"id": "k-bad", "type": "deal.won", "tenant": "default",
               "occurred_at": "2023-12-01T00:00:00Z", "data": {"deal_id": "D-9"}}
    no_tenant = {"id": "k-lost", "type": "deal.lost", "occurred_at": "2024-01-03T00:00:00Z",
                 "data": {"deal_id": "D-9"}}
    messages: list[tuple[bytes, list[tuple[str, bytes]]]] = [
        (orjson.dumps(good[2]), []), (orjson.dumps(good[0]), []),
        (orjson.dumps(good[1]), [("tenant", b"default")]),  # the tenant as a header
        (b"{not json", []), (orjson.dumps(no_tenant), []), (orjson.dumps(bad_won), []),
        (orjson.dumps(good[0]), [])]  # produced twice: a duplicate
    _produce(bootstrap, connectors["INGEST_TOPIC"], messages)
    wait_until(lambda: (_get(stack, "/v1/funnel") or {}).get("won") == 1, timeout=90,
               message=f"the produced deal to be won\n{stack.logs()}")
    refused = _read(bootstrap, connectors["INGEST_REFUSED_TOPIC"], 3)
    assert len(refused) == 3, refused
    by_status = sorted((r["problem"]["status"], r["message"]["value"][:12]) for r in refused)
    assert [s for s, _ in by_status] == [400, 422, 422], by_status
    before_creation = next(r for r in refused if '"k-bad"' in r["message"]["value"])
    assert before_creation["problem"]["errors"][0]["field"] == "occurred_at"
    assert before_creation["problem"]["type"].endswith("/invalid-event")
    assert orjson.loads(before_creation["message"]["value"]) == bad_won
    missing = next(r for r in refused if '"k-lost"' in r["message"]["value"])
    assert missing["problem"]["errors"][0]["field"] == "tenant"


def _cdc(change: str, record: str, seq: int, at_ms: int, fields: dict[str, Any],
         changed: list[str] | None = None) -> dict[str, Any]:
    return {"ChangeEventHeader": {
        "entityName": "Opportunity", "recordIds": [record], "changeType": change,
        "changeOrigin": "com/salesforce/api/soap/60.0", "transactionKey": f"tx-{record}-{seq}",
        "sequenceNumber": seq, "commitTimestamp": at_ms, "commitNumber": seq,
        "commitUser": "0055e000001Owner", "changedFields": changed or [],
        "diffFields": [], "nulledFields": []}, **fields}


def test_salesforce_cdc_on_its_topic_makes_deals_replays_change_nothing(
        stack: Stack, connectors: dict[str, str]) -> None:
    day = 86_400_000
    t0 = 1_704_067_200_000  # 2024-01-01
    history = []
    for n, outcome in enumerate(["Closed Won", "Closed Lost", "Closed Won", None]):
        record = f"0065e00000Opp{n:03d}"
        history.append(_cdc("CREATE", record, 1, t0 + n * day, {
            "Name": f"Opp {n}", "StageName": "Prospecting", "Amount": 1000 + n,
            "CloseDate": "2024-03-31", "OwnerId": f"0055e0000Owner{n % 2}", "IsClosed": False,
            "IsWon": False}))
        history.append(_cdc("UPDATE", record, 2, t0 + (n + 5) * day,
                            {"StageName": "Negotiation/Review"}, ["StageName"]))
        if outcome:
            history.append(_cdc("UPDATE", record, 3, t0 + (n + 9) * day,
                                {"StageName": outcome, "IsClosed": True,
                                 "IsWon": outcome == "Closed Won"},
                                ["StageName", "IsClosed", "IsWon"]))
    deleted = _cdc("DELETE", "0065e00000Opp003", 4, t0 + 20 * day, {})
    replay = history[:4]
    shuffled = history + replay + [deleted]
    random.Random(3).shuffle(shuffled)
    _produce(stack.env["KAFKA_BOOTSTRAP_SERVERS"],
             connectors["SALESFORCE_CDC_TOPICS"].split("=")[0],
             [(orjson.dumps(m), []) for m in shuffled] + [(b"\x00poison", [])])

    def settled() -> bool:
        status = _get(stack, "/v1/connectors/salesforce/status") or {}
        return status.get("dead_lettered") == 2 and status.get("duplicate") == len(replay) \
            and (_get(stack, "/v1/funnel") or {}).get("won") == 2
    wait_until(settled, timeout=90, message=f"the CDC events to be folded\n{stack.logs()}")
    funnel = _get(stack, "/v1/funnel")
    assert (funnel["won"], funnel["lost"]) == (2, 1), funnel
    by_rep = {row["key"]: row for row in _get(stack, "/v1/breakdown", by="rep")["rows"]}
    assert by_rep["0055e0000Owner0"]["won"] == 2, by_rep
    dead = _get(stack, "/v1/connectors/salesforce/dead-letters")
    reasons = sorted(d["reason"][:7] for d in dead["dead_letters"])
    assert reasons == ["DELETE ", "not JSO"], dead


def _same_scale(value: Any) -> Any:
    """Amounts compared as numbers: Salesforce sends `Amount` as a JSON number (a double), so
    its 30600.0 is the contract's "30600.00", at another scale."""
    if isinstance(value, dict):
        return {k: _same_scale(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_scale(v) for v in value]
    if isinstance(value, str):
        try:
            return Decimal(value).normalize()
        except InvalidOperation:
            return value
    return value


def _salesforce_contract(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Salesforce CDC of Opportunity knows of the history, as contract events."""
    from tests.integration.test_connectors import REPS_SINCE

    def opp(deal_id: str) -> str:
        return f"006{hubspot_deal_id(deal_id):0>15}"

    out: list[dict[str, Any]] = []
    reps: set[str] = set()
    for event in history:
        kind, data = event["type"], dict(event["data"])
        if kind == "deal.created":
            reps.add(data["owner_id"])
            data = {"deal_id": opp(data["deal_id"]), "owner_id": data["owner_id"],
                    "stage": data.get("stage") or "prospecting",
                    **{k: data[k] for k in ("amount", "expected_close", "source")
                       if data.get(k) is not None}}
        elif kind in ("deal.stage_changed", "deal.amount_changed", "deal.owner_changed",
                      "deal.close_date_changed", "deal.won", "deal.lost"):
            reps.update([data["owner_id"]] if "owner_id" in data else [])
            data = {**data, "deal_id": opp(data["deal_id"])}
            if kind == "deal.lost":
                data = {"deal_id": data["deal_id"]}
        else:
            continue
        out.append({**event, "data": data})
    return [{"id": f"join-{r}", "type": "rep.joined", "occurred_at": REPS_SINCE,
             "data": {"rep_id": r, "name": r, "team_id": "crm"}} for r in sorted(reps)] + out


def test_a_shuffled_salesforce_cdc_history_gives_the_contract_histories_figures(
        stack: Stack, connectors: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from services.simulate.crm import as_salesforce_cdc
    from services.simulate.world import simulate

    start = datetime(2024, 1, 1, tzinfo=UTC)
    history = list(simulate(5, start, start + timedelta(days=75), teams=1, reps_per_team=3))
    reference_key = stack.key("admin", tenant="reference")
    with stack.client(reference_key) as client:
        answer = client.post("/v1/events/batch", json=_salesforce_contract(history))
        assert answer.status_code == 202, answer.text
    changes = as_salesforce_cdc(history)
    rng = random.Random(11)
    redelivered = rng.sample(changes, 40)
    shuffled = changes + redelivered
    rng.shuffle(shuffled)
    _produce(stack.env["KAFKA_BOOTSTRAP_SERVERS"],
             connectors["SALESFORCE_CDC_TOPICS"].split("=")[0],
             [(orjson.dumps(m), []) for m in shuffled])

    def figures(key: str) -> tuple[Any, Any]:
        with stack.client(key) as client:
            funnel, by_rep = client.get("/v1/funnel"), client.get("/v1/breakdown",
                                                                  params={"by": "rep"})
        if by_rep.status_code != 200:
            return None, None
        return _same_scale(funnel.json()), _same_scale(by_rep.json())

    def settled() -> bool:
        status = _get(stack, "/v1/connectors/salesforce/status") or {}
        done = status.get("accepted", 0) + status.get("held", 0) + status.get("duplicate", 0)
        return done == len(shuffled) and figures(stack.admin_key) == figures(reference_key)
    wait_until(settled, timeout=120, message=f"the CDC history to be folded\n{stack.logs()}")
    status = _get(stack, "/v1/connectors/salesforce/status")
    assert status["duplicate"] == len(redelivered) and status["dead_lettered"] == 0, status
    funnel, _ = figures(stack.admin_key)
    assert funnel["won"] > 0 and funnel["lost"] > 0, funnel
