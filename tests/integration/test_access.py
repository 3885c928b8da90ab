"""Attacks on access control through the real API: no credential, bad credentials, roles
reaching outside their scope (filters, breakdowns, leaderboard, rep pages, targets, alerts,
configuration), revoked keys, rate limits, oversized bodies. Every refusal is counted so the
closing note can say how many requests were tried."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import LoadedStack, Stack, bearer, wait_until

pytestmark = pytest.mark.integration
AS_OF = "2017-12-31T18:00:00+08:00"
TRIED: Counter[str] = Counter()


def _reps_by_team(year: LoadedStack) -> dict[str, list[str]]:
    teams: dict[str, list[str]] = {}
    for rep in year.get("/v1/dimensions")["reps"]:
        teams.setdefault(rep["team"], []).append(rep["id"])
    return teams


def _get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    TRIED["requests"] += 1
    return client.get(path, params=params)


def _refused(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    body = response.json()
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    TRIED[f"refused {status}"] += 1


CRM_WEBHOOKS = {("post", "/v1/connectors/hubspot"): "HubSpot-Signature-v3",
                ("post", "/v1/connectors/pipedrive"): "Basic"}


def test_every_route_but_healthz_wants_a_credential(year_stack: LoadedStack) -> None:
    stack = year_stack.stack
    with stack.client() as admin:
        spec = admin.get("/openapi.json").json()
    routes = [(method, path.replace("{", "").replace("}", "")) for path, methods in
              spec["paths"].items() for method in methods if path != "/healthz"]
    routes += [("get", "/openapi.json"), ("get", "/metrics")]
    assert len(routes) > 30
    for credential in ({}, bearer("sp_0000_notakey"), bearer("garbage"),
                       bearer(jwt.encode({"sub": "x", "tenant": "default", "role": "admin",
                                          "exp": int(time.time()) + 60}, "wrong secret " * 3))):
        with httpx.Client(base_url=stack.url, timeout=30, headers=credential) as anonymous:
            for method, path in routes:
                TRIED["requests"] += 1
                answer = anonymous.request(method, path, json={} if method != "get" else None)
                assert answer.status_code == 401, (method, path, answer.status_code)
                # A CRM's webhook is authenticated the CRM's way (README, "Connecting a CRM").
                scheme = CRM_WEBHOOKS.get((method, path), "Bearer")
                assert answer.headers["WWW-Authenticate"].startswith(scheme), (method, path)
                TRIED["refused 401"] += 1
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/dashboard").status_code == 200  # a page without data


def test_a_rep_sees_exactly_their_own_figures_and_nothing_else(year_stack: LoadedStack) -> None:
    teams = _reps_by_team(year_stack)
    team, members = next((t, m) for t, m in sorted(teams.items()) if len(m) >= 2)
    me, colleague = members[0], members[1]
    stranger = next(m[0] for t, m in sorted(teams.items()) if t != team)
    key = year_stack.stack.key("rep", rep_id=me)
    with year_stack.stack.client(key) as rep, year_stack.stack.client() as admin:
        for path, params in (("/v1/funnel", {}), ("/v1/breakdown", {"by": "month"}),
                             ("/v1/revenue", {"as_of": AS_OF}), ("/v1/cycle", {"as_of": AS_OF}),
                             ("/v1/leads", {"as_of": AS_OF}),
                             ("/v1/activities", {"as_of": AS_OF}),
                             ("/v1/forecast", {"as_of": AS_OF})):
            mine = _get(rep, path, **params)
            assert mine.status_code == 200, mine.text
            assert mine.json() == _get(admin, path, rep=me, **params).json(), path
            assert mine.json() != _get(admin, path, **params).json(), path  # it was narrowed
            _refused(_get(rep, path, rep=colleague, **params), 403, "rep")
        rows = _get(rep, "/v1/breakdown", by="rep").json()["rows"]
        assert [r["key"] for r in rows] == [me]
        board = _get(rep, "/v1/leaderboard", as_of=AS_OF).json()["rows"]
        assert [r["rep"] for r in board] == [me]
        assert _get(rep, f"/v1/reps/{me}", as_of=AS_OF).status_code == 200
        for other in (colleague, stranger):
            _refused(_get(rep, f"/v1/reps/{other}", as_of=AS_OF), 403, "rep_id")
        _refused(_get(rep, "/v1/targets", scope="company", as_of=AS_OF), 403, "scope")
        targets = _get(rep, "/v1/targets", as_of=AS_OF).json()["targets"]
        assert targets and {(t["scope"], t["scope_id"]) for t in targets} == {("rep", me)}
        dims = _get(rep, "/v1/dimensions").json()
        assert [r["id"] for r in dims["reps"]] == [me]
        alerts = _get(rep, "/v1/alerts", limit=10_000).json()["alerts"]
        assert all(a["owner"] == me for a in alerts)
        _refused(_get(rep, "/v1/alerts", owner=colleague), 403, "owner")
        for stalled in _get(rep, "/v1/deals/stalled").json()["deals"]:
            assert stalled["owner"] == me
        TRIED["requests"] += 3
        _refused(rep.put("/v1/pipeline", json={"stages": ["a", "b"]}), 403)
        _refused(rep.post("/v1/events", json={}), 403)
        _refused(rep.post("/v1/keys", json={"role": "admin"}), 403)


def test_a_manager_sees_their_team_and_no_other(year_stack: LoadedStack) -> None:
    teams = _reps_by_team(year_stack)
    team, members = sorted(teams.items())[0]
    other_team, outsiders = sorted(teams.items())[1]
    key = year_stack.stack.key("manager", team_id=team)
    with year_stack.stack.client(key) as manager, year_stack.stack.client() as admin:
        assert _get(manager, "/v1/funnel").json() == _get(admin, "/v1/funnel", team=team).json()
        assert _get(manager, "/v1/funnel", rep=members[0]).json() == \
            _get(admin, "/v1/funnel", rep=members[0], team=team).json()
        _refused(_get(manager, "/v1/funnel", team=other_team), 403, "team")
        _refused(_get(manager, "/v1/breakdown", by="rep", rep=outsiders[0]), 403, "rep")
        keys = {r["key"] for r in _get(manager, "/v1/breakdown", by="team").json()["rows"]}
        assert keys == {team}
        board = _get(manager, "/v1/leaderboard", as_of=AS_OF).json()["rows"]
        assert board and {r["team"] for r in board} == {team}
        assert _get(manager, f"/v1/reps/{members[0]}", as_of=AS_OF).status_code == 200
        _refused(_get(manager, f"/v1/reps/{outsiders[0]}", as_of=AS_OF), 403, "rep_id")
        _refused(_get(manager, "/v1/targets", scope="company", as_of=AS_OF), 403, "scope")
        scopes = {(t["scope"], t["scope_id"]) for t in
                  _get(manager, "/v1/targets", as_of=AS_OF).json()["targets"]}
        assert ("team", team) in scopes and all(
            s == ("team", team) or (s[0] == "rep" and s[1] in members) for s in scopes)
        assert {r["team"] for r in _get(manager, "/v1/dimensions").json()["reps"]} == {team}
        for alert in _get(manager, "/v1/alerts", limit=10_000).json()["alerts"]:
            assert alert["team"] == team
        _refused(_get(manager, "/v1/alerts", team=other_team), 403, "team")


def test_the_deals_export_holds_the_logs_deals_and_keeps_each_scope(
        year_stack: LoadedStack) -> None:
    import csv
    import io

    events = year_stack.events
    created = {e["data"]["deal_id"]: e["data"]["owner_id"] for e in events
               if e["type"] == "deal.created"}
    owners = dict(created)
    for e in events:
        if e["type"] == "deal.owner_changed":
            owners[e["data"]["deal_id"]] = e["data"]["owner_id"]
    won = {e["data"]["deal_id"] for e in events if e["type"] == "deal.won"}
    everything = year_stack.get("/v1/export/deals", format="json")["deals"]
    assert sorted(r["deal_id"] for r in everything) == sorted(created)
    assert {r["deal_id"] for r in everything if r["status"] == "won"} == won
    assert {r["deal_id"]: r["rep"] for r in everything} == owners

    me = sorted(set(owners.values()))[0]
    with year_stack.stack.client(year_stack.stack.key("rep", rep_id=me)) as rep:
        answer = _get(rep, "/v1/export/deals")
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows and {r["rep"] for r in rows} == {me}
        assert sorted(r["deal_id"] for r in rows) == sorted(d for d, o in owners.items()
                                                           if o == me)
        _refused(_get(rep, "/v1/export/deals", rep="someone-else"), 403, "rep")


def test_ingest_keys_write_and_read_nothing(year_stack: LoadedStack) -> None:
    with year_stack.stack.client(year_stack.stack.key("ingest")) as ingest:
        for path in ("/v1/funnel", "/v1/leaderboard", "/v1/alerts", "/v1/dimensions",
                     "/v1/keys", "/v1/targets", "/v1/customers", "/v1/export/deals"):
            _refused(_get(ingest, path), 403)


def test_tenants_never_see_each_other(stack: Stack) -> None:
    from tests.history import simulated

    events = simulated(days=30)
    assert stack.post(events).accepted == len(events)
    other_admin = stack.key("admin", tenant="globex")
    with stack.client(other_admin) as globex, stack.client() as acme:
        # The same events, ids and all, are new to the other tenant: no "duplicate" to infer
        # from, and nothing of the first tenant in its answers.
        TRIED["requests"] += 1
        deals = [i for i, e in enumerate(events) if e["type"] == "deal.created"]
        few = events[:deals[4] + 1]  # a prefix of a history is a history: five deals
        assert len(few) <= 10_000
        answer = globex.post("/v1/events/batch", json=few)
        assert answer.status_code == 202, answer.text
        assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
        _refused(globex.post("/v1/events", json={**few[0], "tenant": "default"}), 422)

        def projected() -> bool:
            return _get(globex, "/v1/breakdown", by="rep").status_code == 200 and sum(
                r["deals"] for r in _get(globex, "/v1/breakdown", by="rep").json()["rows"]
            ) == sum(e["type"] == "deal.created" for e in few)
        wait_until(projected, timeout=60, message="the other tenant's deals")
        ours = _get(acme, "/v1/funnel").json()
        theirs = _get(globex, "/v1/funnel").json()
        assert ours != theirs and theirs["won"] == 0
        TRIED["requests"] += 1
        assert acme.post("/v1/events", json={
            "id": "only-acme-1", "type": "rep.joined", "occurred_at": "2017-01-02T09:00:00+08:00",
            "data": {"rep_id": "R-ONLY-ACME", "name": "秘密", "team_id": "T-SECRET"}}
        ).status_code == 202
        wait_until(lambda: _get(acme, "/v1/reps/R-ONLY-ACME").status_code == 200, timeout=60,
                   message="the first tenant's own rep")
        acme_rep = "R-ONLY-ACME"
        assert _get(globex, f"/v1/reps/{acme_rep}").status_code == 404
        assert "T-SECRET" not in str(_get(globex, "/v1/dimensions").json())
        assert _get(globex, "/v1/funnel", rep=acme_rep).json()["won"] == 0
        # Its alerts are about its own subjects only, and carry its tenant.
        owners = {e["data"]["rep_id"] for e in few if e["type"] == "rep.joined"} | {None}
        for alert in _get(globex, "/v1/alerts", limit=10_000).json()["alerts"]:
            assert alert["tenant"] == "globex" and alert["owner"] in owners, alert
            assert "ONLY-ACME" not in str(alert) and "SECRET" not in str(alert)
        acme_keys = {k["id"] for k in _get(acme, "/v1/keys").json()["keys"]}
        assert not acme_keys & {k["id"] for k in _get(globex, "/v1/keys").json()["keys"]}
        TRIED["requests"] += 1
        _refused(globex.delete(f"/v1/keys/{sorted(acme_keys)[0]}"), 404)
        assert _get(acme, "/v1/funnel").json() == ours  # untouched by all of the above
        assert "T-SECRET" in str(_get(acme, "/v1/dimensions").json())


def test_a_revoked_key_stops_working_on_its_next_request(module_stack: Stack) -> None:
    with module_stack.client() as admin:
        made = admin.post("/v1/keys", json={"role": "rep", "rep_id": "R-1", "name": "laptop"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert key not in str(admin.get("/v1/keys").json())  # shown once, never listed
        with module_stack.client(key) as rep:
            assert rep.get("/v1/me").json() == {"tenant": "default", "role": "rep",
                                                "credential": made.json()["id"],
                                                "rep_id": "R-1", "team_id": None}
            assert admin.delete(f"/v1/keys/{made.json()['id']}").json()["revoked_at"]
            TRIED["requests"] += 4
            _refused(rep.get("/v1/me"), 401)
        _refused(admin.post("/v1/keys", json={"role": "manager"}), 422)
        _refused(admin.post("/v1/keys", json={"role": "admin", "rate_limit": "lots"}), 422)


def test_tokens_from_an_identity_provider_carry_the_role(module_stack: Stack) -> None:
    secret = module_stack.env["JWT_SECRET"]
    token = jwt.encode({"sub": "alice", "tenant": "default", "role": "manager",
                        "team_id": "T-9", "exp": int(time.time()) + 60}, secret)
    expired = jwt.encode({"sub": "alice", "tenant": "default", "role": "admin",
                          "exp": int(time.time()) - 1}, secret)
    with module_stack.client(token) as manager, module_stack.client(expired) as late:
        assert manager.get("/v1/me").json()["team_id"] == "T-9"
        TRIED["requests"] += 3
        _refused(manager.get("/v1/funnel", params={"team": "T-1"}), 403, "team")
        _refused(late.get("/v1/me"), 401)


def test_each_credential_has_its_own_rate_limit(module_stack: Stack) -> None:
    with module_stack.client() as admin:
        slow = admin.post("/v1/keys", json={"role": "admin", "rate_limit": "5/minute"}).json()
    with module_stack.client(slow["key"]) as limited, module_stack.client() as other:
        answers = [limited.get("/v1/me").status_code for _ in range(7)]
        assert answers == [200] * 5 + [429] * 2
        last = limited.get("/v1/me")
        _refused(last, 429)
        assert 1 <= int(last.headers["Retry-After"]) <= 60
        assert other.get("/v1/me").status_code == 200  # another credential is unaffected
        TRIED["requests"] += 9


def test_oversized_bodies_are_refused_whole_or_streamed(module_stack: Stack) -> None:
    big = b"[" + b" " * (16 * 1024 * 1024) + b"]"
    with module_stack.client() as admin:
        TRIED["requests"] += 2
        _refused(admin.post("/v1/events/batch", content=big,
                            headers={"Content-Type": "application/json"}), 413)

        def chunks() -> Any:
            for _ in range(17):
                yield b" " * (1024 * 1024)
        _refused(admin.post("/v1/events/batch", content=chunks(),
                            headers={"Content-Type": "application/json"}), 413)
        assert admin.get("/v1/me").status_code == 200


def test_zz_report_what_was_tried() -> None:
    print(dict(TRIED))  # the closing note quotes these counts
    assert TRIED["requests"] > 0


async def test_a_burst_of_checks_lets_exactly_the_limit_through(
        containers: dict[str, str]) -> None:
    """Found by `salespulse-bench query`: 200 concurrent requests ran the Redis pool dry, the
    checks failed, and a failing check lets a request through. The API's pool now waits."""
    import asyncio
    import uuid

    from services import bootstrap
    from services.access.revocation import AccessGate, parse_rate
    from services.settings import Settings

    prefix = f"test-burst-{uuid.uuid4().hex[:8]}"
    redis = bootstrap.redis(Settings(redis_url=containers["redis"]))
    try:
        gate = AccessGate(redis, prefix)
        checks = await asyncio.gather(*(gate.check(parse_rate("100/minute"), "default", "k")
                                        for _ in range(1500)))
        assert sum(c.allowed for c in checks) == 100
        refused = [c.retry_after for c in checks if not c.allowed]
        assert all(0 < r <= 60 for r in refused)
        assert len({c.generation for c in checks}) == 1
    finally:
        await redis.delete(f"{prefix}:keys:generation",
                           f"{prefix}:limits:LIMITER/default/k/100/1/minute")
        await redis.aclose()


async def test_checks_waiting_together_share_one_script_call(
        containers: dict[str, str]) -> None:
    """A request waits for at most the script call already out; whoever came meanwhile goes
    in the next one, at most MAX_BATCH at a time, and each is answered for itself."""
    import asyncio
    import uuid

    from services import bootstrap
    from services.access.revocation import MAX_BATCH, AccessGate, parse_rate
    from services.settings import Settings

    prefix = f"test-shared-{uuid.uuid4().hex[:8]}"
    redis = bootstrap.redis(Settings(redis_url=containers["redis"]))
    gate = AccessGate(redis, prefix)
    calls: list[int] = []
    script = gate._check

    async def counted(*, keys: list[str], args: list[object]) -> object:
        calls.append(len(keys) - 1)
        return await script(keys=keys, args=args)

    gate._check = counted  # type: ignore[assignment]
    tight, loose = parse_rate("5/minute"), parse_rate("1000/minute")
    try:
        asked = [gate.check(tight, "default", "a") if n % 3 == 0 else
                 gate.check(loose, "default", "b") if n % 3 == 1 else gate.check()
                 for n in range(2 * MAX_BATCH + 100)]
        checks = await asyncio.gather(*asked)
        assert len(calls) == 3  # two full batches and the rest, not one call per request
        assert sum(calls) == sum(1 for n in range(len(asked)) if n % 3 != 2)
        assert sum(c.allowed for n, c in enumerate(checks) if n % 3 == 0) == 5
        assert all(c.allowed for n, c in enumerate(checks) if n % 3 != 0)
        assert len({c.generation for c in checks}) == 1
        assert await redis.llen(f"{prefix}:limits:{tight.key_for('default', 'a')}") == 5
    finally:
        await redis.delete(f"{prefix}:keys:generation",
                           f"{prefix}:limits:{tight.key_for('default', 'a')}",
                           f"{prefix}:limits:{loose.key_for('default', 'b')}")
        await redis.aclose()


async def test_a_failed_script_call_fails_every_check_in_it_and_the_next_still_goes() -> None:
    import asyncio

    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from services.access.revocation import AccessGate, parse_rate

    nowhere = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    gate = AccessGate(nowhere, "test-nowhere")
    try:
        for _ in range(2):
            failed = await asyncio.wait_for(asyncio.gather(
                *(gate.check(parse_rate("5/minute"), "default", "k") for _ in range(20)),
                gate.check(), return_exceptions=True), 10)
            assert all(isinstance(f, RedisConnectionError) for f in failed)
    finally:
        await nowhere.aclose()


async def test_the_window_is_the_one_the_limits_library_keeps(
        containers: dict[str, str]) -> None:
    """Same layout, same key: processes of the previous release (the `limits` library's
    moving window) and of this one count the same hits during a rolling deploy."""
    import uuid

    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    from services import bootstrap
    from services.access.revocation import AccessGate, parse_rate
    from services.settings import Settings

    prefix = f"test-window-{uuid.uuid4().hex[:8]}"
    rate = parse_rate("10/minute")
    redis = bootstrap.redis(Settings(redis_url=containers["redis"]))
    previous = MovingWindowRateLimiter(RedisStorage(
        containers["redis"].replace("redis://", "async+redis://", 1), implementation="redispy",
        key_prefix=f"{prefix}:limits"))
    try:
        for _ in range(4):
            assert (await AccessGate(redis, prefix).check(rate, "default", "k")).allowed
        for _ in range(3):
            assert await previous.hit(rate, "default", "k")
        assert (await previous.get_window_stats(rate, "default", "k")).remaining == 3
        checks = [await AccessGate(redis, prefix).check(rate, "default", "k") for _ in range(4)]
        assert [c.allowed for c in checks] == [True, True, True, False]
        assert not await previous.hit(rate, "default", "k")
    finally:
        await redis.delete(f"{prefix}:keys:generation",
                           f"{prefix}:limits:{rate.key_for('default', 'k')}")
        await redis.aclose()
