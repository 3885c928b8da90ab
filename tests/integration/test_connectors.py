"""CRM webhooks through the real stack (API, ledger on PostgreSQL, relay, broker, projector,
Redis): signatures and credentials checked before anything is stored, vendor histories
replayed shuffled and with retries give the figures of the same history sent as contract
events, and what cannot be mapped is dead-lettered and listed (issue #26)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from services.simulate.crm import as_hubspot, batches, hubspot_deal_id, signed_request
from services.simulate.world import simulate
from tests.conftest import Stack, bearer, wait_until
from tests.integration.test_arrival_order import _stored

pytestmark = pytest.mark.integration
SECRET = "app-secret-of-the-test-app"
PORTAL = 777
REPS_SINCE = "2000-01-01T00:00:00+00:00"
FIRST_STAGE = "prospecting"


def _connect_hubspot(client: httpx.Client) -> None:
    assert client.put("/v1/connectors/hubspot/mapping",
                      json={"account": str(PORTAL)}).status_code == 200
    assert client.put("/v1/connectors/hubspot/credentials",
                      json={"app_secret": SECRET}).status_code == 204


def _post(stack: Stack, batch: list[dict[str, Any]], secret: str = SECRET,
          now_ms: int | None = None) -> httpx.Response:
    url = stack.url + "/v1/connectors/hubspot"
    body, headers = signed_request(url, secret, batch, now_ms)
    return httpx.post(url, content=body, headers=headers, timeout=60)


def _history() -> list[dict[str, Any]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return list(simulate(5, start, start + timedelta(days=75), teams=1, reps_per_team=3))


def _as_contract(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What HubSpot knows of the history, as a front end speaking the contract sends it:
    deals created in the first stage (HubSpot's creation carries no stage) by their owner,
    with their amount, then their changes and closes (a loss without a reason)."""
    kept = ("deal.created", "deal.stage_changed", "deal.amount_changed", "deal.owner_changed",
            "deal.close_date_changed", "deal.won", "deal.lost")
    out: list[dict[str, Any]] = []
    owners = {"unassigned"}
    for event in history:
        if event["type"] not in kept:
            continue
        data = {**event["data"], "deal_id": hubspot_deal_id(event["data"]["deal_id"])}
        if event["type"] == "deal.created":
            owners.add(data["owner_id"])
            created = {k: data[k] for k in ("deal_id", "owner_id", "amount", "expected_close")
                       if data.get(k) is not None}
            out.append({**event, "data": {**created, "stage": FIRST_STAGE}})
            if data.get("stage") and data["stage"] != FIRST_STAGE:
                out.append({**event, "id": event["id"] + "-stage", "type": "deal.stage_changed",
                            "data": {"deal_id": data["deal_id"], "stage": data["stage"]}})
            continue
        if event["type"] == "deal.owner_changed":
            owners.add(data["owner_id"])
        if event["type"] == "deal.lost":
            data = {"deal_id": data["deal_id"]}
        out.append({**event, "data": data})
    joined = [{"id": f"join-{o}", "type": "rep.joined", "occurred_at": REPS_SINCE,
               "data": {"rep_id": o, "name": o, "team_id": "crm"}} for o in sorted(owners)]
    return joined + out


def _figures(stack: Stack, key: str) -> tuple[Any, Any]:
    with stack.client(key) as client:
        funnel = client.get("/v1/funnel")
        by_rep = client.get("/v1/breakdown", params={"by": "rep"})
    if funnel.status_code != 200 or by_rep.status_code != 200:
        return None, None
    return funnel.json(), by_rep.json()


def test_a_bad_or_stale_hubspot_signature_is_401_and_nothing_is_stored(stack: Stack) -> None:
    with stack.client() as client:
        _connect_hubspot(client)
    batch = as_hubspot(_history()[:400], PORTAL)[:20]
    before = _stored(stack)
    wrong = _post(stack, batch, secret="not-the-app-secret")
    stale = _post(stack, batch, now_ms=int((datetime.now(UTC) - timedelta(minutes=6))
                                           .timestamp() * 1000))
    unsigned = httpx.post(stack.url + "/v1/connectors/hubspot", content=orjson.dumps(batch),
                          headers={"Content-Type": "application/json"})
    for answer in (wrong, stale, unsigned):
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert "older than 5 minutes" in stale.json()["detail"]
    assert _stored(stack) == before
    with stack.client() as client:
        status = client.get("/v1/connectors/hubspot/status").json()
    assert status["accepted"] == status["held"] == status["dead_lettered"] == 0, status


def test_a_shuffled_hubspot_history_with_retries_gives_the_contract_histories_figures(
        stack: Stack) -> None:
    history = _history()
    notifications = as_hubspot(history, PORTAL)
    reference = _as_contract(history)
    reference_key = stack.key("admin", tenant="reference")
    with stack.client(reference_key) as client:
        response = client.post("/v1/events/batch", content=orjson.dumps(reference),
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 202, response.text
    with stack.client() as client:
        _connect_hubspot(client)
    shuffled = list(notifications)
    rng = random.Random(26)
    rng.shuffle(shuffled)
    sent = list(batches(shuffled))
    retried = [[{**n, "attemptNumber": n["attemptNumber"] + 1} for n in batch]
               for batch in rng.sample(sent, len(sent) // 4)]
    outcomes: dict[str, int] = {}
    for batch in sent + retried:
        answer = _post(stack, batch)
        assert answer.status_code == 200, answer.text
        for result in answer.json()["results"]:
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    assert outcomes.get("dead_lettered", 0) == 0, outcomes
    assert outcomes["duplicate"] >= sum(len(b) for b in retried), outcomes
    assert outcomes["held"] > 0, outcomes  # the shuffle sent changes before their deals

    wait_until(lambda: _figures(stack, stack.admin_key) == _figures(stack, reference_key)
               and _figures(stack, stack.admin_key)[0] is not None, timeout=120,
               message="the HubSpot tenant's figures to equal the contract tenant's")
    funnel, by_rep = _figures(stack, stack.admin_key)
    assert funnel["won"] > 0 and funnel["lost"] > 0, funnel
    assert len([r for r in by_rep["rows"] if r["won"]]) > 1, by_rep
    with stack.client() as client:
        status = client.get("/v1/connectors/hubspot/status").json()
        pending = client.get("/v1/events/pending").json()
    assert status["accepted"] + status["held"] + status["duplicate"] == len(shuffled) + sum(
        len(b) for b in retried), status
    assert status["last_notification_at"] is not None
    assert pending["pending"] == 0, pending
    print(f"\n{len(notifications)} HubSpot notifications ({len(retried)} batches retried): "
          f"{outcomes}; funnel won {funnel['won']}, lost {funnel['lost']}")


def test_unmappable_or_refused_hubspot_notifications_are_dead_lettered_and_listed(
        stack: Stack) -> None:
    with stack.client() as client:
        _connect_hubspot(client)
    at = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp() * 1000)

    def n(event_id: int, kind: str, offset_s: int, **extra: Any) -> dict[str, Any]:
        return {"eventId": event_id, "subscriptionId": 1, "portalId": PORTAL, "appId": 4242,
                "occurredAt": at + offset_s * 1000, "subscriptionType": kind,
                "attemptNumber": 0, "objectId": 9001, "changeSource": "CRM", **extra}

    batch = [n(1, "deal.creation", 0),
             n(2, "deal.propertyChange", 60, propertyName="dealstage", propertyValue="closedwon"),
             n(3, "deal.propertyChange", 120, propertyName="amount", propertyValue="900"),
             n(4, "deal.propertyChange", 30, propertyName="dealstage",
               propertyValue="no-such-stage"),
             n(5, "deal.deletion", 180), "not a notification"]
    answer = _post(stack, batch)
    assert answer.status_code == 200, answer.text
    outcomes = [r["outcome"] for r in answer.json()["results"]]
    # The amount dated after the win is refused by the ledger; the rest stand.
    assert outcomes == ["accepted", "accepted", "dead_lettered", "dead_lettered",
                        "dead_lettered", "dead_lettered"], answer.text
    with stack.client() as client:
        listed = client.get("/v1/connectors/hubspot/dead-letters").json()
        status = client.get("/v1/connectors/hubspot/status").json()
        ingest = client.get("/v1/connectors/hubspot/dead-letters",
                            headers=bearer(stack.key("rep", rep_id="R-1")))
    assert listed["total"] == 4
    assert listed["dead_letters"][0]["payload"] == "not a notification"
    reasons = {item["payload"]["eventId"]: item["reason"] for item in listed["dead_letters"]
               if isinstance(item["payload"], dict)}
    assert set(reasons) == {3, 4, 5}
    assert "closed" in reasons[3] and "no-such-stage" in reasons[4], reasons
    assert status["dead_lettered"] == 4 and status["accepted"] == 2, status
    assert ingest.status_code == 403
    metrics = httpx.get(stack.url + "/metrics", headers=bearer(stack.env["METRICS_TOKEN"])).text
    counted = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
               if line.startswith("salespulse_connector_notifications_total{")}
    assert counted == {
        'salespulse_connector_notifications_total{connector="hubspot",outcome="accepted"}': 2.0,
        'salespulse_connector_notifications_total{connector="hubspot",outcome="dead_lettered"}':
            4.0}, counted


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _pipedrive(action: str, entity: str, entity_id: int, timestamp: str, data: Any,
               previous: Any = None, attempt: int = 1) -> dict[str, Any]:
    return {"meta": {"action": action, "entity": entity, "entity_id": str(entity_id),
                     "company_id": "555", "correlation_id": f"c-{entity_id}-{timestamp}",
                     "id": f"{entity_id}-{timestamp}-{attempt}", "is_bulk_edit": False,
                     "timestamp": timestamp, "type": "general", "user_id": "11",
                     "version": "2.0", "webhook_id": "9", "webhook_owner_id": "11",
                     "change_source": "app", "permitted_user_ids": ["11"], "attempt": attempt,
                     "host": "acme.pipedrive.com"},
            "data": data, "previous": previous}


def _pipedrive_history() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Three Pipedrive deals' notifications, and the same history as contract events."""
    notes, events = [], []
    for deal, (owner, outcome) in enumerate([(11, "won"), (12, "lost"), (11, "open")], 1):
        base = {"id": deal, "title": f"Deal {deal}", "owner_id": owner, "value": 1000 * deal,
                "currency": "EUR", "stage_id": 1, "pipeline_id": 1, "status": "open",
                "add_time": f"2024-02-0{deal}T09:00:00Z", "expected_close_date": "2024-04-30",
                "org_id": None, "custom_fields": {}}
        notes.append(_pipedrive("create", "deal", deal, base["add_time"], base))
        events.append({"id": f"c{deal}", "type": "deal.created", "occurred_at": base["add_time"],
                       "data": {"deal_id": str(deal), "owner_id": str(owner),
                                "stage": "prospecting", "amount": str(1000 * deal),
                                "currency": "EUR", "expected_close": "2024-04-30"}})
        moved = {**base, "stage_id": 4, "update_time": f"2024-02-1{deal}T09:00:00Z",
                 "stage_change_time": f"2024-02-1{deal}T09:00:00Z"}
        notes.append(_pipedrive("change", "deal", deal, moved["update_time"], moved,
                                {"stage_id": 1}))
        events.append({"id": f"s{deal}", "type": "deal.stage_changed",
                       "occurred_at": moved["update_time"],
                       "data": {"deal_id": str(deal), "stage": "proposal"}})
        if outcome == "open":
            continue
        closed_at = f"2024-03-0{deal}T09:00:00Z"
        closed = {**moved, "status": outcome, "update_time": closed_at,
                  f"{outcome}_time": closed_at, "lost_reason": "Price" if outcome == "lost"
                  else None}
        notes.append(_pipedrive("change", "deal", deal, closed_at, closed, {"status": "open"}))
        data: dict[str, Any] = {"deal_id": str(deal)}
        data.update({"amount": str(1000 * deal)} if outcome == "won" else {"reason": "Price"})
        events.append({"id": f"o{deal}", "type": f"deal.{outcome}", "occurred_at": closed_at,
                       "data": data})
    reps = [{"id": f"j{r}", "type": "rep.joined", "occurred_at": REPS_SINCE,
             "data": {"rep_id": r, "name": r, "team_id": "crm"}} for r in ("11", "12")]
    return notes, reps + events


def test_pipedrive_basic_auth_replays_and_figures(stack: Stack) -> None:
    with stack.client() as client:
        assert client.put("/v1/connectors/pipedrive/credentials",
                          json={"username": "pd-hook", "password": "s3cret"}).status_code == 204
        assert client.put("/v1/connectors/pipedrive/mapping",
                          json={"account": "555"}).status_code == 200
        secret_view = client.get("/v1/connectors/pipedrive/mapping").json()
    assert "s3cret" not in orjson.dumps(secret_view).decode()
    notes, reference = _pipedrive_history()
    url = stack.url + "/v1/connectors/pipedrive"
    before = _stored(stack)
    for headers in ({}, _basic("pd-hook", "wrong"), _basic("someone", "s3cret")):
        answer = httpx.post(url, json=notes[0], headers=headers)
        assert answer.status_code == 401, answer.text
    assert _stored(stack) == before

    reference_key = stack.key("admin", tenant="reference")
    with stack.client(reference_key) as client:
        assert client.post("/v1/events/batch", json=reference).status_code == 202
    shuffled = notes + [{**n, "meta": {**n["meta"], "attempt": 2}} for n in notes[::2]]
    random.Random(7).shuffle(shuffled)
    outcomes = []
    for note in shuffled:
        answer = httpx.post(url, json=note, headers=_basic("pd-hook", "s3cret"))
        assert answer.status_code == 200, answer.text
        outcomes += [r["outcome"] for r in answer.json()["results"]]
    assert outcomes.count("duplicate") == len(notes[::2]), outcomes
    assert "dead_lettered" not in outcomes, outcomes
    wait_until(lambda: _figures(stack, stack.admin_key) == _figures(stack, reference_key)
               and _figures(stack, stack.admin_key)[0] is not None, timeout=120,
               message="the Pipedrive tenant's figures to equal the contract tenant's")
    funnel, _ = _figures(stack, stack.admin_key)
    assert (funnel["won"], funnel["lost"]) == (1, 1), funnel
    wrong_company = {**notes[0], "meta": {**notes[0]["meta"], "company_id": "999"}}
    assert httpx.post(url, json=wrong_company,
                      headers=_basic("pd-hook", "s3cret")).status_code == 401


def _pipedrive_contract(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Pipedrive knows of the history, as contract events: deals with owner, stage,
    amount, close date and source (its `origin`), their changes and closes (a loss with its
    reason, no competitor), and the done activities on them as Pipedrive types them."""
    from services.connectors.mapping import DEFAULTS
    from services.simulate.crm import PIPEDRIVE_TYPES

    kinds = DEFAULTS["pipedrive"].activity_kinds
    out: list[dict[str, Any]] = []
    reps: set[str] = set()
    deals: set[str] = set()
    for event in history:
        kind, data = event["type"], dict(event["data"])
        if kind == "activity.logged":
            if data.get("deal_id") not in deals:
                continue
            data = {"activity_id": hubspot_deal_id(data["activity_id"]),
                    "kind": kinds[PIPEDRIVE_TYPES[data["kind"]]], "rep_id": data["rep_id"],
                    "deal_id": hubspot_deal_id(data["deal_id"])}
            reps.add(data["rep_id"])
        elif kind.startswith("deal.") and kind != "deal.created" and data["deal_id"] in deals:
            data["deal_id"] = hubspot_deal_id(data["deal_id"])
            data.pop("competitor", None)
            reps.update([data["owner_id"]] if "owner_id" in data else [])
        elif kind == "deal.created":
            deals.add(data["deal_id"])
            reps.add(data["owner_id"])
            data = {"deal_id": hubspot_deal_id(data["deal_id"]), "owner_id": data["owner_id"],
                    "stage": data.get("stage") or FIRST_STAGE,
                    **{k: data[k] for k in ("amount", "expected_close", "source")
                       if data.get(k) is not None}}
        else:
            continue
        if kind != "quote.sent":  # Pipedrive's deal webhooks carry no quotes
            out.append({**event, "data": data})
    joined = [{"id": f"join-{r}", "type": "rep.joined", "occurred_at": REPS_SINCE,
               "data": {"rep_id": r, "name": r, "team_id": "crm"}} for r in sorted(reps)]
    return joined + out


def test_a_shuffled_pipedrive_history_with_retries_gives_the_contract_histories_figures(
        stack: Stack) -> None:
    from services.simulate.crm import as_pipedrive

    history = _history()
    notes = as_pipedrive(history, 555)
    reference_key = stack.key("admin", tenant="reference")
    with stack.client(reference_key) as client:
        answer = client.post("/v1/events/batch", content=orjson.dumps(
            _pipedrive_contract(history)), headers={"Content-Type": "application/json"})
        assert answer.status_code == 202, answer.text
    with stack.client() as client:
        assert client.put("/v1/connectors/pipedrive/credentials",
                          json={"username": "pd", "password": "pw"}).status_code == 204
    rng = random.Random(2026)
    retries = [{**n, "meta": {**n["meta"], "attempt": 2}} for n in rng.sample(notes, 60)]
    shuffled = notes + retries
    rng.shuffle(shuffled)
    outcomes: dict[str, int] = {}
    with httpx.Client(base_url=stack.url, auth=("pd", "pw"), timeout=60) as http:
        for note in shuffled:
            answer = http.post("/v1/connectors/pipedrive", json=note)
            assert answer.status_code == 200, answer.text
            outcome = answer.json()["results"][0]["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("dead_lettered", 0) == 0, outcomes
    assert outcomes["duplicate"] == len(retries) and outcomes["held"] > 0, outcomes
    wait_until(lambda: _figures(stack, stack.admin_key) == _figures(stack, reference_key)
               and _figures(stack, stack.admin_key)[0] is not None, timeout=120,
               message="the Pipedrive tenant's figures to equal the contract tenant's")
    funnel, by_rep = _figures(stack, stack.admin_key)
    assert funnel["won"] > 0 and funnel["loss_reasons"], funnel  # reasons came through
    assert sum(row["activities"] for row in by_rep["rows"]) > 0, by_rep
    print(f"\n{len(notes)} Pipedrive notifications + {len(retries)} retries: {outcomes}")
