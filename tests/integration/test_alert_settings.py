"""Alert routing through the admin API, one-tap links, the alert history of a subject, and
all of it surviving a backup and restore (docs/ALERTS.md, "Settings and actions")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from alerts.planning import Dispatch, idempotency_key
from services.alerter.links import LinkSigner
from services.alerter.outbox import Outbox
from services.alerter.secrets import Sealer, link_key
from services.alerter.settings_log import open_log
from services.settings import Settings
from tests.builders import stall_a_deal_now
from tests.conftest import Stack, _forget_redis, _fresh_schema, _wait_for_api, wait_until

pytestmark = pytest.mark.integration

SECRET = "SEC-dingtalk-robot-secret-0123456789"
ROUTING: dict[str, Any] = {
    "channels": [
        {"id": "sales-ding", "kind": "dingtalk", "language": "zh-CN", "secret": SECRET,
         "target": "https://oapi.dingtalk.com/robot/send?access_token=abc"},
        {"id": "mail", "kind": "email", "target": "", "language": None},
    ],
    "routes": [{"channel": "sales-ding", "to": ["owner", "manager"],
                "rules": ["stalled_deal"], "severities": []},
               {"channel": "mail", "to": ["manager"], "rules": [], "severities": ["high"]}],
    "escalations": [{"after_minutes": 60, "rule": None, "severity": "high"}],
    "quiet": {"start": "09:00", "end": "18:00", "working_days": [0, 1, 2, 3, 4],
              "let_through": ["high"]},
    "daily_cap": 5,
    "key_customers_to_manager": True,
    "contacts": {"R1": {"id": "R1", "name": "王芳", "language": "zh-CN",
                        "email": "wang@example.com", "mobile": "13800000000"}},
}


def settings_of(stack: Stack) -> Settings:
    return Settings(database_url=stack.env["DATABASE_URL"], data_dir=Path(stack.env["DATA_DIR"]))


def routing_in_redis(stack: Stack) -> dict[str, Any] | None:
    raw = Redis.from_url(stack.env["REDIS_URL"]).get(
        f"{stack.env['REDIS_PREFIX']}:alerting:default:routing")
    return orjson.loads(raw) if raw else None


def signer(stack: Stack) -> LinkSigner:
    return LinkSigner(link_key(settings_of(stack)), "http://phone.example", timedelta(hours=72))


@pytest.fixture(scope="module")
def alert(module_stack: Stack) -> dict[str, Any]:
    """A real alert: the alerter sees a deal stall in a stage whose threshold is 3 s."""
    with module_stack.client() as client:
        stall_a_deal_now(client, "D1")

        def fired() -> dict[str, Any] | None:
            rows = client.get("/v1/alerts", params={"rule": "stalled_deal"}).json()["alerts"]
            return next((r for r in rows if r["subject"] == "D1"), None)

        return wait_until(fired, timeout=90, message="the stalled deal's alert")  # type: ignore[no-any-return]


def state_of(stack: Stack, alert_id: str) -> dict[str, Any]:
    with stack.client() as client:
        return next(r for r in client.get("/v1/alerts").json()["alerts"] if r["id"] == alert_id)


def test_routing_round_trips_and_its_secrets_never_come_back(module_stack: Stack) -> None:
    with module_stack.client() as client:
        assert client.get("/v1/alerts/routing").json()["channels"] == []
        put = client.put("/v1/alerts/routing", json=ROUTING)
        assert put.status_code == 200, put.text
        got = client.get("/v1/alerts/routing")
    assert got.status_code == 200
    assert SECRET not in got.text and SECRET not in put.text
    shown = got.json()
    assert [c["secret"] for c in shown["channels"]] == ["set", None]
    assert {k: v for k, v in shown.items() if k != "channels"} == \
        {k: v for k, v in ROUTING.items() if k != "channels"}
    assert [{**c, "secret": None} for c in shown["channels"]] == \
        [{**c, "secret": None} for c in ROUTING["channels"]]
    # The alerter's copy: sealed in Redis, readable only with the key kept apart.
    stored = routing_in_redis(module_stack)
    assert stored is not None and SECRET not in orjson.dumps(stored).decode()
    assert Sealer(settings_of(module_stack)).unseal(stored["channels"][0]["secret"]) == SECRET


def test_a_channel_sent_without_its_secret_keeps_the_stored_one(module_stack: Stack) -> None:
    with module_stack.client() as client:
        assert client.put("/v1/alerts/routing", json=ROUTING).status_code == 200
        shown = client.get("/v1/alerts/routing").json()  # secret: "set"
        shown["daily_cap"] = 9
        assert client.put("/v1/alerts/routing", json=shown).status_code == 200
        assert client.get("/v1/alerts/routing").json()["daily_cap"] == 9
    stored = routing_in_redis(module_stack)
    assert stored is not None
    assert Sealer(settings_of(module_stack)).unseal(stored["channels"][0]["secret"]) == SECRET


def test_a_lost_or_stale_routing_in_redis_is_put_back_from_the_store(
        module_stack: Stack) -> None:
    with module_stack.client() as client:
        assert client.put("/v1/alerts/routing", json=ROUTING).status_code == 200
        stored = routing_in_redis(module_stack)
        key = f"{module_stack.env['REDIS_PREFIX']}:alerting:default:routing"
        redis = Redis.from_url(module_stack.env["REDIS_URL"])
        for damage in (lambda: redis.delete(key), lambda: redis.set(key, b'{"channels":[]}')):
            damage()
            assert client.get("/v1/alerts/routing").status_code == 200
            assert routing_in_redis(module_stack) == stored
        # Lost under a running API, and nobody asks: it is put back within a minute.
        redis.delete(key)
        wait_until(lambda: routing_in_redis(module_stack) == stored, timeout=90,
                   message="the routing put back by the API's periodic check")


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["routes"].append({"channel": "nowhere", "to": ["owner"]}), "routes[2].channel"),
    (lambda d: d["channels"][1].update(kind="pager"), "channels[1].kind"),
    (lambda d: d.update(daily_cap=0), "daily_cap"),
    (lambda d: d["quiet"].update(start="9 o'clock"), "quiet.start"),
    (lambda d: d.update(daily_cap=2**70), "daily_cap"),  # JSON can say it; no store keeps it
    (lambda d: d["contacts"]["R1"].update(name="\ud800"), "contacts.R1.name"),
])
def test_a_routing_that_cannot_be_read_is_a_422_naming_the_field(
        module_stack: Stack, change: Any, field: str) -> None:
    document = json.loads(json.dumps(ROUTING))
    change(document)
    with module_stack.client() as client:
        before = client.get("/v1/alerts/routing").json()
        answer = client.put("/v1/alerts/routing", content=json.dumps(document),  # ASCII
                            headers={"Content-Type": "application/json"})
        assert client.get("/v1/alerts/routing").json() == before  # nothing half-written
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == field


def test_routing_is_for_admins_only(module_stack: Stack) -> None:
    manager = module_stack.key("manager", team_id="T1")
    with module_stack.client(manager) as client:
        assert client.get("/v1/alerts/routing").status_code == 403
        assert client.put("/v1/alerts/routing", json=ROUTING).status_code == 403


def test_a_one_tap_link_acknowledges_once_and_opening_it_does_nothing(
        module_stack: Stack, alert: dict[str, Any]) -> None:
    token = signer(module_stack).token("default", alert["id"], "M1", "acknowledge",
                                       datetime.now(UTC))
    with module_stack.client("") as anyone:  # no API key: the token is the credential
        page = anyone.get(f"/v1/alerts/act/{token}", headers={"Accept-Language": "zh-CN,en;q=0.5"})
        assert page.status_code == 200 and "<form method=\"post\">" in page.text
        assert "确认" in page.text
        assert state_of(module_stack, alert["id"])["state"] == "open"  # a pre-fetch acts not
        done = anyone.post(f"/v1/alerts/act/{token}", headers={"Accept-Language": "en"})
        assert done.status_code == 200, done.text
        assert "Acknowledged" in done.text
        acked = state_of(module_stack, alert["id"])
        assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "M1")
        again = anyone.post(f"/v1/alerts/act/{token}")
        assert again.status_code == 409 and "already used" in again.text
        assert anyone.get(f"/v1/alerts/act/{token}").status_code == 409


def test_an_expired_or_forged_link_is_refused(module_stack: Stack,
                                              alert: dict[str, Any]) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=73)
    expired = signer(module_stack).token("default", alert["id"], "M1", "snooze", long_ago)
    forged = LinkSigner(b"another key", "http://x", timedelta(hours=72)).token(
        "default", alert["id"], "M1", "snooze", datetime.now(UTC))
    with module_stack.client("") as anyone:
        for token in (expired, forged):
            assert anyone.get(f"/v1/alerts/act/{token}").status_code == 403
            answer = anyone.post(f"/v1/alerts/act/{token}")
            assert answer.status_code == 403
        assert "expired" in anyone.post(f"/v1/alerts/act/{expired}").text
    assert state_of(module_stack, alert["id"]).get("snoozed_until") is None


def test_the_history_of_a_deal_tells_who_was_told_and_what_they_did(
        module_stack: Stack, alert: dict[str, Any]) -> None:
    tenant = "default"
    opened = {"id": f"{alert['id']}:opened", "kind": "opened", "at": alert["became_true_at"],
              "alert": alert}
    sent_at = datetime.now(UTC).replace(microsecond=0)
    # Due tomorrow, so the stack's own delivery worker leaves it to this test.
    later = sent_at + timedelta(days=1)
    # A channel of its own: the stack's alerter already told M1 through the routing's.
    dispatch = Dispatch(tenant, opened["id"], "M1", "history-inbox", later, "now", 1,
                        idempotency_key(opened["id"], "M1", "history-inbox"))

    async def deliver() -> None:  # as the alerter's delivery worker records a sent message
        box = Outbox(Settings(database_url=module_stack.env["DATABASE_URL"]))
        await box.add([(dispatch, opened, sent_at)], sent_at)
        await box.attempt([dispatch.idempotency_key], later)
        await box.sent([dispatch.idempotency_key], sent_at)
        box.close()

    asyncio.run(deliver())
    told = {"recipient": "M1", "channel": "history-inbox", "kind": "opened", "mode": "now",
            "level": 1, "at": sent_at.isoformat(), "outcome": "delivered", "attempts": 1,
            "error": None}
    token = signer(module_stack).token(tenant, alert["id"], "M1", "snooze", datetime.now(UTC))
    with module_stack.client() as client:
        assert client.post(f"/v1/alerts/act/{token}").status_code == 200
        history = client.get("/v1/alerts/history", params={"subject": "D1"}).json()
        assert client.get("/v1/alerts/history", params={"subject": "D-none"}).json()[
            "count"] == 0
        assert client.get("/v1/alerts/history", params={"subject": "D1", "kind": "customer"}
                          ).json()["count"] == 0
        assert client.get("/v1/alerts/history", params={"subject": "D1", "kind": "deal"}
                          ).json()["alerts"] == history["alerts"]
    (row,) = [a for a in history["alerts"] if a["id"] == alert["id"]]
    # Beside the alerter's own dispatches for the routing the earlier tests set.
    assert told in row["deliveries"]
    assert [t["kind"] for t in row["transitions"]][0] == "opened"
    assert "snoozed" in [t["kind"] for t in row["transitions"]]
    snoozed = [a for a in row["actions"] if a["kind"] == "snoozed"]
    assert snoozed and snoozed[-1]["by"] == "M1" and snoozed[-1]["via"] == "link"
    until = datetime.fromisoformat(snoozed[-1]["until"])
    at = datetime.fromisoformat(snoozed[-1]["at"])
    assert until - at == timedelta(hours=24)
    assert row["state"] == "snoozed"


def salespulse(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def api_only(module_stack: Stack, containers: dict[str, str], tmp_path: Path
             ) -> Iterator[tuple[Stack, str]]:
    """The module's store restored into a fresh schema; an API over it with a Redis of
    its own (a new prefix: what a restore after losing Redis starts from)."""
    file = tmp_path / "backup.jsonl.gz"
    salespulse("backup", str(file), env=module_stack.env)
    with _fresh_schema(containers["postgres"]) as restored_url:
        salespulse("restore", str(file), env={**module_stack.env, "DATABASE_URL": restored_url})
        from services.broker import free_port

        env = {**module_stack.env, "DATABASE_URL": restored_url,
               "REDIS_PREFIX": f"{module_stack.env['REDIS_PREFIX']}-restored"}
        restored = Stack(env, f"http://127.0.0.1:{free_port()}", tmp_path)
        restored.admin_key = module_stack.admin_key  # restored with the keys
        restored.start("api")
        try:
            _wait_for_api(restored)
            yield restored, restored_url
        finally:
            restored.stop()
            _forget_redis(env["REDIS_URL"], env["REDIS_PREFIX"])


def test_a_restore_gives_the_same_routing_and_acknowledgements(
        module_stack: Stack, alert: dict[str, Any], api_only: tuple[Stack, str]) -> None:
    restored, restored_url = api_only
    original_log = open_log(settings_of(module_stack))
    copy_log = open_log(Settings(database_url=restored_url,
                                 data_dir=Path(module_stack.env["DATA_DIR"])))
    try:
        before, after = original_log.routing("default"), copy_log.routing("default")
        assert before is not None and after is not None
        assert after.document == before.document
        acted_before = original_log.actions("default", alert["id"])
        acted_after = copy_log.actions("default", alert["id"])
        assert acted_before is not None and acted_after is not None
        assert acted_after.actions == acted_before.actions
        assert acted_after.spent == acted_before.spent  # a spent link stays spent
    finally:
        original_log.close()
        copy_log.close()
    # The restored API re-derived the alerter's Redis from the store, and answers alike.
    wait_until(lambda: routing_in_redis(restored), message="the routing re-derived in Redis")
    stored = routing_in_redis(restored)
    assert stored is not None
    assert Sealer(settings_of(module_stack)).unseal(stored["channels"][0]["secret"]) == SECRET
    with module_stack.client() as live, restored.client() as copy:
        assert copy.get("/v1/alerts/routing").json() == live.get("/v1/alerts/routing").json()
    user = Redis.from_url(restored.env["REDIS_URL"]).hget(
        f"{restored.env['REDIS_PREFIX']}:default:alerts:user", alert["id"])
    assert user is not None and orjson.loads(user)["acknowledged_by"] == "M1"
