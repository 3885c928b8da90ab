"""Scopes hold over every filter, time window and org move: a property test.

Hypothesis draws an org history (reps joining teams and moving between them, deals opened,
won, lost and handed over, activities, leads, orders, payments, targets) for two tenants,
and a list of reads: a random principal (an admin, a manager, a rep, an ingest key, or
another tenant's admin, manager or rep) on a random GET route with random filters, window
and `as_of`. The facts are folded by the real reducer into real Redis, and the real API
(in process, signed tokens) answers. Each answer must be one of:

- a 403 problem naming a field the principal asked outside its scope (the fields computed
  here from the drawn history, not by the code under test), or
- exactly the admin's answer to the same question narrowed to the principal's scope (a
  manager's `team`, a rep's `rep`), with the independent checks below;
- for another tenant: exactly the answer of an API whose Redis holds that tenant alone.

The scope rule (docs/SECURITY.md): a fact is a team's when the team is its team at the
moment docs/METRICS.md attributes it (a deal at its close, a lead at its creation, ...); a
manager reads their team's facts, a rep page of a rep who was in the team at the window's
close, and may name as `rep` a rep now in the team. So no team id, nor its manager's id,
other than the manager's own ever appears in a manager's answer, and no other rep's id in
a rep's. Seeded (derandomized): the same cases on every run; `SCOPE_EXAMPLES` sets how many.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from alerts.engine import AlertEngine
from alerts.rules import RuleSettings
from services.alerter.store import AlertStore
from services.api.app import create_app
from services.readmodels.store import FactStore
from services.settings import Settings
from tests.history import changes

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
DAY0 = date(2017, 1, 1)
DAYS = 180
TEAMS = ("T-1", "T-2", "T-3")
MANAGER_OF = {"T-1": "M-1", "T-2": "M-2", "T-3": "M-3"}
REGION_OF = {"T-1": "north", "T-2": "south", "T-3": "north"}
REPS = tuple(f"R-{i:02d}" for i in range(1, 7))  # R-06 never joins: a name in no history
ACME, GLOBEX = "acme", "globex"
EXAMPLES = int(os.environ.get("SCOPE_EXAMPLES", "100"))
TRIED: Counter[str] = Counter()


def moment(day: int, hour: int) -> str:
    return f"{(DAY0 + timedelta(days=day)).isoformat()}T{hour:02d}:00:00+08:00"


# --- the org history, drawn -----------------------------------------------------------


@dataclass
class History:
    """The events and, kept beside them, who was in which team when (the test's own model)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    teams: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)

    def team_at(self, rep: str, at: datetime) -> str | None:
        entries = self.teams.get(rep)
        if not entries:
            return None
        before = [team for since, team in entries if since <= at]
        return before[-1] if before else entries[0][1]

    def team_now(self, rep: str | None) -> str | None:
        entries = self.teams.get(rep or "")
        return entries[-1][1] if entries else None

    def joined_by(self, rep: str, at: datetime) -> bool:
        return rep in self.teams and self.teams[rep][0][0] <= at


@st.composite
def histories(draw: st.DrawFn) -> History:
    history = History()
    out = history.events

    def emit(type_: str, day: int, hour: int, **data: Any) -> None:
        out.append({"id": f"e-{len(out)}", "type": type_, "occurred_at": moment(day, hour),
                    "data": data})

    reps = REPS[:draw(st.integers(2, 5))]
    for rep in reps:
        day, team = draw(st.integers(0, 40)), draw(st.sampled_from(TEAMS))
        emit("rep.joined", day, 9, rep_id=rep, name=f"name of {rep}", team_id=team,
             manager_id=MANAGER_OF[team], region=REGION_OF[team])
        history.teams[rep] = [(datetime.fromisoformat(moment(day, 9)), team)]
        for _ in range(draw(st.integers(0, 2))):
            if day + 1 >= DAYS:
                break
            day = draw(st.integers(day + 1, DAYS - 1))
            team = draw(st.sampled_from([t for t in TEAMS if t != team]))
            emit("rep.moved", day, 9, rep_id=rep, team_id=team, manager_id=MANAGER_OF[team],
                 region=REGION_OF[team])
            history.teams[rep].append((datetime.fromisoformat(moment(day, 9)), team))
    for customer, segment in (("C-1", "smb"), ("C-2", "enterprise"), ("C-3", "smb")):
        emit("customer.created", 0, 8, customer_id=customer, name=customer, segment=segment)
    for n in range(draw(st.integers(0, 8))):
        deal, owner = f"D-{n}", draw(st.sampled_from(reps))
        created = draw(st.integers(0, DAYS - 30))
        emit("deal.created", created, 10, deal_id=deal, owner_id=owner,
             customer_id=draw(st.sampled_from(("C-1", "C-2", "C-3"))),
             amount=str(draw(st.integers(1, 50)) * 1000), stage="prospecting",
             product=draw(st.sampled_from(
                 ("P-a", "P-b"))), source=draw(st.sampled_from(("web", "fair"))))
        closes = created + draw(st.integers(2, 29))
        for day in draw(st.lists(st.integers(created, closes), max_size=3)):
            emit("activity.logged", day, 11, activity_id=f"A-{len(out)}",
                 kind=draw(st.sampled_from(("call", "visit"))), rep_id=draw(
                     st.sampled_from(reps)), deal_id=deal, duration_min=10)
        emit("deal.stage_changed", created + 1, 12, deal_id=deal, stage="proposal")
        if draw(st.booleans()):
            emit("deal.owner_changed", created + 1, 13, deal_id=deal,
                 owner_id=draw(st.sampled_from(reps)))
        outcome = draw(st.sampled_from(("open", "won", "lost")))
        if outcome == "lost":
            emit("deal.lost", closes, 14, deal_id=deal, reason="price")
        elif outcome == "won":
            emit("deal.won", closes, 14, deal_id=deal)
            emit("order.booked", closes + 1, 15, order_id=f"O-{n}",
                 customer_id=draw(st.sampled_from(("C-1", "C-2", "C-3"))), amount="1000",
                 deal_id=deal)
            emit("payment.received", closes + draw(st.integers(1, 20)), 16,
                 payment_id=f"Y-{n}", order_id=f"O-{n}", amount="400")
    for n in range(draw(st.integers(0, 3))):
        emit("lead.created", draw(st.integers(0, DAYS - 1)), 10, lead_id=f"L-{n}",
             source="web", owner_id=draw(st.sampled_from(reps)))
    for n in range(draw(st.integers(0, 3))):
        scope = draw(st.sampled_from(("team", "rep")))
        emit("target.set", 0, 7, scope=scope,
             scope_id=draw(st.sampled_from(TEAMS if scope == "team" else reps)),
             period=draw(st.sampled_from(("2017-Q1", "2017-02", "2017"))),
             metric=draw(st.sampled_from(("won_value", "activities"))), value=str(n + 5))
    out.sort(key=lambda e: e["occurred_at"])  # business time is the order a fold sees
    return history


# --- principals and questions ----------------------------------------------------------


@dataclass(frozen=True)
class Who:
    tenant: str
    role: str
    rep_id: str | None = None
    team_id: str | None = None

    def claims(self) -> dict[str, Any]:
        return {"sub": f"{self.role}-{self.rep_id or self.team_id or ''}",
                "tenant": self.tenant, "role": self.role, "exp": int(time.time()) + 3600,
                **({"rep_id": self.rep_id} if self.rep_id else {}),
                **({"team_id": self.team_id} if self.team_id else {})}


ADMIN = Who(ACME, "admin")
_managers = st.builds(lambda t: Who(ACME, "manager", team_id=t), st.sampled_from(TEAMS))
_reps = st.builds(lambda r: Who(ACME, "rep", rep_id=r), st.sampled_from(REPS))
principals = st.one_of(  # the scoped roles of the first tenant, where the moves are, thrice
    _managers, _managers, _managers, _reps, _reps, _reps,
    st.just(ADMIN), st.just(Who(ACME, "ingest")), st.just(Who(GLOBEX, "admin")),
    st.builds(lambda t: Who(GLOBEX, "manager", team_id=t), st.sampled_from(TEAMS)),
    st.builds(lambda r: Who(GLOBEX, "rep", rep_id=r), st.sampled_from(REPS)))

# Every GET route that reads figures, and the filters it takes.
DIMS = {"rep": REPS, "team": TEAMS, "manager": tuple(MANAGER_OF.values()),
        "region": ("north", "south"), "source": ("web", "fair"), "product": ("P-a", "P-b"),
        "segment": ("smb", "enterprise")}
FILTERED = {"/v1/funnel": {}, "/v1/breakdown": {"by": ("rep", "team", "manager", "month")},
            "/v1/leads": {"by": ("rep", "team", "source", "month")}, "/v1/activities": {},
            "/v1/cycle": {}, "/v1/revenue": {"by": ("month", "rep", "team")},
            "/v1/customers": {"by": ("month",)}, "/v1/customers/rfm": {},
            "/v1/forecast": {}, "/v1/forecast/accuracy": {"period": ("month", "quarter")},
            "/v1/export/deals": {"format": ("json",)}}
NO_AS_OF = ("/v1/funnel", "/v1/breakdown", "/v1/export/deals")
PERIODS = ("2017-01", "2017-02", "2017-03", "2017-Q1", "2017-Q2", "2017")
NOW_BASED = ("/v1/deals/stalled", "/v1/customers/at-risk")  # judged at the wall clock
ROUTES = (*FILTERED, "/v1/leaderboard", "/v1/reps/{rep_id}", "/v1/targets",
          "/v1/dimensions", "/v1/alerts", *NOW_BASED)


def maybe(values: tuple[str, ...]) -> st.SearchStrategy[str | None]:
    return st.sampled_from((None, None, None, *values))


days = st.integers(0, DAYS + 20).map(lambda d: (DAY0 + timedelta(days=d)).isoformat())


@st.composite
def questions(draw: st.DrawFn, route: str) -> tuple[Who, str, dict[str, str]]:
    who = draw(principals)
    params: dict[str, str | None] = {"as_of": f"{draw(days)}T18:00:00+08:00"}
    if route in FILTERED or route in ("/v1/leaderboard", "/v1/reps/{rep_id}"):
        names = DIMS if route != "/v1/leaderboard" else ("rep", "team", "manager", "region")
        params.update({name: draw(maybe(DIMS[name])) for name in names})
        for name, values in FILTERED.get(route, {}).items():
            params[name] = draw(st.sampled_from(values))
        if route in ("/v1/leaderboard", "/v1/reps/{rep_id}") and draw(st.booleans()):
            params["period"] = draw(st.sampled_from(PERIODS))
        else:
            params["from"], params["to"] = draw(st.none() | days), draw(st.none() | days)
        if route == "/v1/reps/{rep_id}":
            route = f"/v1/reps/{draw(st.sampled_from((who.rep_id or REPS[0], *REPS)))}"
        if route in NO_AS_OF:
            del params["as_of"]  # asked of what stands now: no moment (and none accepted)
    elif route == "/v1/alerts":
        params = {"owner": draw(maybe(REPS)), "team": draw(maybe(TEAMS)),
                  "manager": draw(maybe(DIMS["manager"])),
                  "state": draw(maybe(("open", "resolved", "active")))}
    elif route == "/v1/targets":
        params.update(scope=draw(maybe(("company", "team", "rep"))),
                      period=draw(maybe(PERIODS)), team=draw(maybe(TEAMS)),
                      rep=draw(maybe(REPS)))
    else:
        params = {}
    return who, route, {k: v for k, v in params.items() if v is not None}


# --- what a principal may see, computed from the drawn history ----------------------------


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def window_closes(params: dict[str, str]) -> datetime:
    """When a leaderboard's or rep page's window closes: its end, or `as_of` if earlier."""
    as_of = datetime.fromisoformat(params["as_of"])
    end: datetime | None = None
    if "period" in params:
        period = params["period"]
        year = int(period[:4])
        if len(period) == 4:
            end = _local_midnight(date(year + 1, 1, 1))
        else:
            month = int(period[5:]) if "Q" not in period else 3 * int(period[-1]) - 2
            month += 1 if "Q" not in period else 3
            end = _local_midnight(date(year + (month > 12), (month - 1) % 12 + 1, 1))
    elif "to" in params:
        end = _local_midnight(date.fromisoformat(params["to"]) + timedelta(days=1))
    return as_of if end is None else min(end, as_of)


def refusals(who: Who, route: str, params: dict[str, str], history: History) -> set[str]:
    """The fields a 403 may name: those asked outside `who`'s scope."""
    outside = set()
    if who.role == "rep":
        if params.get("rep") not in (None, who.rep_id):
            outside.add("rep")
        if route == "/v1/targets" and params.get("scope") not in (None, "rep"):
            outside.add("scope")
        if route.startswith("/v1/reps/") and route.rsplit("/", 1)[1] != who.rep_id:
            outside.add("rep_id")
        if route == "/v1/alerts" and params.get("owner") not in (None, who.rep_id):
            outside.add("owner")
    elif who.role == "manager":
        if params.get("team") not in (None, who.team_id):
            outside.add("team")
        if "rep" in params and history.team_now(params["rep"]) != who.team_id:
            outside.add("rep")
        if route == "/v1/targets" and params.get("scope") == "company":
            outside.add("scope")
        if route.startswith("/v1/reps/") and history.team_at(
                route.rsplit("/", 1)[1], window_closes(params)) != who.team_id:
            outside.add("rep_id")
    return outside


def narrowed(who: Who, route: str, params: dict[str, str]) -> dict[str, str]:
    """The admin's question whose answer is exactly what `who` may see of this one."""
    if who.role == "rep":
        extra = {"owner" if route == "/v1/alerts" else "rep": who.rep_id or ""}
        if route == "/v1/targets":
            extra["scope"] = "rep"
    elif who.role == "manager":
        extra = {"team": who.team_id or ""}
    else:
        extra = {}
    if route in ("/v1/dimensions", *NOW_BASED):
        extra = {}  # these take no filters: checked row by row below
    return {**params, **extra}


def foreign_names(who: Who, history: History) -> list[str]:
    """Ids that must never appear in `who`'s answers, as JSON strings."""
    if who.role == "manager":
        return [f'"{t}"' for t in TEAMS if t != who.team_id] + \
            [f'"{MANAGER_OF[t]}"' for t in TEAMS if t != who.team_id]
    if who.role == "rep":
        return [f'"{r}"' for r in history.teams if r != who.rep_id]
    return []


# --- the stack: real Redis, the real API in process ---------------------------------------


@dataclass
class Reader:
    """An API in this process over a Redis prefix, asked with signed tokens."""

    client: TestClient
    prefix: str
    secret: str

    def get(self, who: Who, route: str, params: dict[str, str]) -> tuple[int, Any]:
        token = jwt.encode(who.claims(), self.secret, algorithm="HS256")
        answer = self.client.get(route, params=params,
                                 headers={"Authorization": f"Bearer {token}"})
        TRIED["requests"] += 1
        body = answer.json()
        if route in NOW_BASED and answer.status_code == 200:
            # Judged at the wall clock, a moment apart between two requests: the rows' ages
            # and evidence move; which subjects are listed, and whose, do not.
            listed = "deals" if route == "/v1/deals/stalled" else "customers"
            body = {listed: [{k: row[k] for k in ("rule", "subject", "owner")}
                             for row in body[listed]]}
        return answer.status_code, body


async def _load(redis_url: str, prefix: str, tenants: dict[str, History]) -> None:
    """The facts as the projector folds them, and the alerts as the alerter records them
    (the engine replayed over the history and 60 days past its end)."""
    client = AsyncRedis.from_url(redis_url)
    try:
        doomed = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if doomed:
            await client.delete(*doomed)
        store = FactStore(client, prefix)
        for tenant, history in tenants.items():
            relayed = changes(history.events, tenant, "Asia/Shanghai")
            await store.apply(relayed)
            engine = AlertEngine(RuleSettings())
            transitions = [t for change in relayed for t in engine.apply(change)]
            transitions += engine.advance(_local_midnight(DAY0 + timedelta(days=DAYS + 60)))
            await AlertStore(client, prefix).record(
                [(t, {"history": True, "delivered_at": t.at.isoformat()}) for t in transitions])
        await store.mark_built()
    finally:
        await client.aclose()


def _forget(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture
def readers(pg_schema: str, containers: dict[str, str], tmp_path: Path
            ) -> Iterator[tuple[Reader, Reader]]:
    """Two APIs: one over both tenants' read models, one over the other tenant's alone."""
    secret = f"scopes-{uuid.uuid4().hex}"
    made = []
    try:
        for name in ("both", "alone"):
            prefix = f"test-scopes-{name}-{uuid.uuid4().hex[:8]}"
            options = Settings(database_url=pg_schema, redis_url=containers["redis"],
                               redis_prefix=prefix, data_dir=tmp_path,
                               kafka_bootstrap_servers=None, jwt_secret=secret,
                               rate_limit="1000000/minute")
            client = TestClient(create_app(options), raise_server_exceptions=True)
            client.__enter__()
            made.append(Reader(client, prefix, secret))
        yield made[0], made[1]
    finally:
        for reader in made:
            reader.client.__exit__(None, None, None)
            _forget(containers["redis"], reader.prefix)


def check(who: Who, route: str, params: dict[str, str], acme: History, both: Reader,
          alone: Reader) -> None:
    status, body = both.get(who, route, params)
    where = (who, route, params)
    if who.tenant == GLOBEX:
        # Nothing of the first tenant changes a word of the second's answers.
        assert (status, body) == alone.get(who, route, params), where
        TRIED["other tenant"] += 1
        return
    if who.role == "ingest":
        assert status == 403, where
        TRIED["refused 403"] += 1
        return
    outside = refusals(who, route, params, acme)
    if outside:
        assert status == 403, (where, outside, body)
        assert body["errors"][0]["field"] in outside, (where, outside, body)
        TRIED["refused 403"] += 1
        TRIED[f"refused 403 naming {body['errors'][0]['field']}"] += 1
        return
    text = str(body).replace("'", '"')
    for name in foreign_names(who, acme):
        assert name not in text, (where, name, body)
    if route in ("/v1/dimensions", *NOW_BASED):
        _check_rows(who, route, body, both.get(ADMIN, route, {})[1], acme)
        TRIED["answered"] += 1
        return
    expected = both.get(ADMIN, route, narrowed(who, route, params))
    assert (status, body) == expected, where
    if status == 200 and who.role != "admin":
        TRIED[f"narrowed {who.role} {route.rsplit('/', 1)[0] if 'reps/' in route else route}"] += 1
    if status == 200 and who.role == "manager":
        if route == "/v1/leaderboard":
            closes = window_closes(params)
            assert {r["team"] for r in body["rows"]} <= {who.team_id}, where
            if set(params) <= {"as_of", "from", "to", "period", "team"}:
                assert {r["rep"] for r in body["rows"]} == {
                    r for r in acme.teams if acme.joined_by(r, closes)
                    and acme.team_at(r, closes) == who.team_id}, where
        if route.startswith("/v1/reps/"):
            assert body["team"] == who.team_id, where
        if route == "/v1/alerts":
            assert {a["team"] for a in body["alerts"]} <= {who.team_id}, where
            TRIED["alerts seen by managers"] += body["count"]
    TRIED["answered"] += 1


def _check_rows(who: Who, route: str, body: Any, admins: Any, history: History) -> None:
    """The routes without filters, row by row against the drawn history."""
    def mine(owner: str | None) -> bool:
        if who.role == "rep":
            return owner == who.rep_id
        return who.role == "admin" or history.team_now(owner) == who.team_id

    if route == "/v1/dimensions":
        if who.role == "rep":
            reps = [who.rep_id] if who.rep_id in history.teams else []
        else:
            reps = sorted(r for r in history.teams if mine(r))
        assert [r["id"] for r in body["reps"]] == reps, (who, body)
        for name, values in body.items():
            if name != "reps":
                assert set(values) <= set(admins[name]), (who, name, body)
        return
    listed = "deals" if route == "/v1/deals/stalled" else "customers"
    assert body[listed] == [row for row in admins[listed] if mine(row["owner"])], who


def test_every_answer_is_the_admins_narrowed_to_the_scope_or_a_403(
        readers: tuple[Reader, Reader], containers: dict[str, str]) -> None:
    both, alone = readers

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate),  # a failure prints its case unshrunk
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(acme=histories(), globex=histories(), data=st.data())
    def case(acme: History, globex: History, data: st.DataObject) -> None:
        asyncio.run(_load(containers["redis"], both.prefix, {ACME: acme, GLOBEX: globex}))
        asyncio.run(_load(containers["redis"], alone.prefix, {GLOBEX: globex}))
        TRIED["histories"] += 1
        TRIED["moves"] += sum(e["type"] == "rep.moved" for e in acme.events)
        for route in ROUTES:  # every route in every history, asked twice
            for _ in range(2):
                who, path, params = data.draw(questions(route))
                TRIED[f"asked as {who.tenant} {who.role}"] += 1
                check(who, path, params, acme, both, alone)

    case()
    print(f"scopes over time: {dict(sorted(TRIED.items()))}")  # noqa: T201 - the docs' figures
    # Every kind of outcome was reached: refusals, narrowed answers, the other tenant.
    assert TRIED["refused 403"] and TRIED["answered"] and TRIED["other tenant"], TRIED


def test_a_moved_reps_old_team_stays_with_its_old_manager(
        readers: tuple[Reader, Reader], containers: dict[str, str]) -> None:
    """The issue's case by hand: R-07 won a deal in T-2, moved to T-3 and won one there."""
    both, _ = readers
    history = History()

    def emit(type_: str, day: int, hour: int, **data: Any) -> None:
        history.events.append({"id": f"e-{len(history.events)}", "type": type_,
                               "occurred_at": moment(day, hour), "data": data})

    for rep, team in (("R-07", "T-2"), ("R-08", "T-2"), ("R-09", "T-3")):
        emit("rep.joined", 0, 9, rep_id=rep, name=rep, team_id=team,
             manager_id=MANAGER_OF[team], region=REGION_OF[team])
    for n, (owner, day) in enumerate((("R-07", 10), ("R-08", 12), ("R-07", 120),
                                      ("R-09", 122))):
        emit("deal.created", day, 10, deal_id=f"D-{n}", owner_id=owner, amount="1000",
             stage="prospecting")
        emit("deal.won", day + 5, 14, deal_id=f"D-{n}")
    emit("rep.moved", 100, 9, rep_id="R-07", team_id="T-3", manager_id="M-3", region="north")
    history.events.sort(key=lambda e: e["occurred_at"])
    asyncio.run(_load(containers["redis"], both.prefix, {ACME: history}))
    t2, t3 = Who(ACME, "manager", team_id="T-2"), Who(ACME, "manager", team_id="T-3")
    as_of = {"as_of": moment(DAYS, 18)}
    before = {**as_of, "to": "2017-03-01"}

    for asked in (before, {**as_of, "period": "2017-02"}, {**before, "from": "2017-01-01"}):
        status, body = both.get(t3, "/v1/reps/R-07", asked)
        assert status == 403 and body["errors"][0]["field"] == "rep_id", body
        board = both.get(t3, "/v1/leaderboard", asked)[1]["rows"]
        assert [r["rep"] for r in board] == ["R-09"], board  # alone in T-3 then
    status, body = both.get(t3, "/v1/reps/R-07", {**before, "team": "T-2"})
    assert status == 403 and body["errors"][0]["field"] == "team", body
    status, then = both.get(t2, "/v1/reps/R-07", before)
    assert status == 200 and then["team"] == "T-2" and then["figures"]["won"] == 1, then
    status, now = both.get(t3, "/v1/reps/R-07", as_of)
    assert status == 200 and now["team"] == "T-3", now
    # T-3's manager sees what R-07 did in T-3 only: one deal of two, an average over T-3.
    assert now["figures"]["won"] == 1 and now["team_reps"] == 2, now
    assert both.get(ADMIN, "/v1/reps/R-07", as_of)[1]["figures"]["won"] == 2
    assert "T-2" not in str(now) and "M-2" not in str(now)
