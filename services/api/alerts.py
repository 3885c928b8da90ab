"""Alerts: the list, acknowledge and snooze, the live stream, webhooks, and the current
stalled deals and at-risk customers. Rules and defaults: docs/ALERTS.md."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from pydantic import BaseModel, Field, HttpUrl
from sse_starlette.sse import EventSourceResponse

from alerts.lifecycle import AlertClosed
from alerts.rules import RULES
from services.access.principal import Forbidden, Principal
from services.alerter.store import AlertStore, effective_fields
from services.api.alert_actions import apply_action
from services.api.auth import (
    ADMINISTER,
    READ,
    STANDING_CHECK_SECONDS,
    PrincipalDep,
    StandingDep,
    TenantDep,
)
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS, problem_responses
from services.api.views import team_of

router = APIRouter(prefix="/v1", tags=["alerts"])
_ALERT_PROBLEMS = problem_responses(400, 404, 409)  # 400: a body that is not JSON
State = Literal["open", "acknowledged", "snoozed", "resolved", "retracted", "active"]


def _store(services: ServicesDep) -> AlertStore:
    return AlertStore(services.redis, services.settings.redis_prefix)


@router.get("/alerts", dependencies=[READ])
async def list_alerts(
    services: ServicesDep, caller: PrincipalDep,
    owner: str | None = None, manager: str | None = None, team: str | None = None,
    rule: Literal[RULES] | None = None,  # type: ignore[valid-type]
    state: State | None = None,
    history: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Alerts, newest condition first. Each names its rule, subject, owner, the owner's manager
    and team, evidence, severity, `became_true_at` (event time), `history` (fired while
    replaying the past, or held only in the past: no webhook was sent) and its state: `open`,
    `acknowledged`, `snoozed` (until `snoozed_until`), `resolved` (`resolved_at`) or
    `retracted` (`retracted_at`: a late event showed it never held). `state=active` = none
    of the last two. Rules: stalled_deal, inactive_deal, lead_sla, churn_risk, engagement_drop,
    pace (docs/ALERTS.md)."""
    if caller.role == "rep" and owner not in (None, caller.rep_id):
        raise Forbidden("owner", f"this credential reads the alerts of {caller.rep_id!r} only")
    if caller.role == "manager" and team not in (None, caller.team_id):
        raise Forbidden("team", f"this credential reads the alerts of team {caller.team_id!r}")
    now = datetime.now(UTC)
    rows = [effective_fields(a, u, now) for a, u in await _store(services).alerts(caller.tenant)
            if _visible(caller, a)]
    wanted = {"owner": owner, "manager": manager, "team": team, "rule": rule}
    rows = [r for r in rows if all(v is None or r.get(k) == v for k, v in wanted.items())
            and (state is None or r["state"] == state
                 or (state == "active" and r["state"] not in ("resolved", "retracted")))
            and (history is None or r.get("history") == history)]
    rows.sort(key=lambda r: (r["became_true_at"], r["id"]), reverse=True)
    return {"count": len(rows), "alerts": rows[:limit]}


class Acknowledgement(BaseModel):
    by: str | None = Field(default=None, max_length=128)


class Snooze(BaseModel):
    until: datetime


def _visible(caller: Principal, alert: dict[str, Any]) -> bool:
    return caller.may_read_owner(alert.get("owner"), alert.get("team"))


async def _alert(services: ServicesDep, caller: Principal, alert_id: str
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    found = await _store(services).alert(caller.tenant, alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    if not _visible(caller, found[0]):
        raise Forbidden("alert_id", "this alert is outside this credential's scope")
    return found


@router.post("/alerts/{alert_id}/ack", dependencies=[READ], responses=_ALERT_PROBLEMS)
async def ack_alert(services: ServicesDep, caller: PrincipalDep, alert_id: str,
                    body: Acknowledgement | None = None) -> dict[str, Any]:
    """Acknowledge an open alert: it stays listed (state `acknowledged`) until its condition
    clears. 409 if already resolved or retracted."""
    alert, user = await _alert(services, caller, alert_id)
    try:
        return await apply_action(services, caller.tenant, alert, user, "acknowledged",
                                  body.by if body else None, "api", credential=caller.subject)
    except AlertClosed:
        raise HTTPException(409, f"the alert is {alert['state']}") from None


@router.post("/alerts/{alert_id}/snooze", dependencies=[READ], responses=_ALERT_PROBLEMS)
async def snooze_alert(services: ServicesDep, caller: PrincipalDep, alert_id: str,
                       body: Snooze) -> dict[str, Any]:
    """Snooze an open alert until `until` (ISO 8601, in the future): state `snoozed` until
    then, `open` (or `acknowledged`) after. 409 if resolved or retracted, 422 if `until` is
    not ahead."""
    alert, user = await _alert(services, caller, alert_id)
    until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
    try:
        return await apply_action(services, caller.tenant, alert, user, "snoozed", None, "api",
                                  until=until, credential=caller.subject)
    except AlertClosed:
        raise HTTPException(409, f"the alert is {alert['state']}") from None
    except ValueError as exc:
        raise HTTPException(422, f"until: {exc}") from None


# A position in the alert stream: a Redis stream id, `ms` or `ms-seq`, each within 64 bits.
STREAM_ID_PATTERN = r"^[0-9]{1,20}(-[0-9]{1,20})?$"


def stream_position(value: str | None, field: str) -> str | None:
    """`value` when it is a stream id Redis can read after; a 400 naming `field` otherwise,
    before the stream starts (not a 200 cut short)."""
    if value is None:
        return None
    if re.fullmatch(STREAM_ID_PATTERN, value) and all(
            int(part) < 2**64 for part in value.split("-")):
        return value
    raise HTTPException(400, f"{field}: {value[:40]!r} is not a stream position; expected "
                             "an event id this stream gave (`ms` or `ms-seq`), or `0`")


@router.get("/alerts/stream", dependencies=[READ], responses=problem_responses(400))
async def alert_stream(
    request: Request, services: ServicesDep, caller: PrincipalDep, standing: StandingDep,
    since: Annotated[str | None, Query(
        description="a stream id to resume after; `0` = from the beginning; default: new "
                    "ones only", json_schema_extra={"pattern": STREAM_ID_PATTERN})] = None,
    last_event_id: Annotated[str | None, Header(
        json_schema_extra={"pattern": STREAM_ID_PATTERN})] = None,
) -> EventSourceResponse:
    """Server-sent events, one per alert transition (`opened`, `resolved`, `retracted`,
    `reopened`, `acknowledged`, `snoozed`), in order; the event id is the Redis stream id,
    so a reconnecting client (Last-Event-ID) misses nothing. Data: the transition with its
    alert. A position that is not a stream id (`since` or Last-Event-ID) is a 400, before
    the stream starts.

    The stream ends, with a last event `end` whose data names the `reason`, within a second
    of its credential being revoked (`revoked`), expiring (`expired`) or given another role
    or scope (`changed`), or when the credential store cannot confirm it after a revocation
    (`unverifiable`)."""
    store = _store(services)
    tenant = caller.tenant
    after = (stream_position(last_event_id, "Last-Event-ID") or stream_position(since, "since")
             or await store.last_stream_id(tenant))

    async def events() -> AsyncIterator[dict[str, str]]:
        position = after
        while not await request.is_disconnected():
            lapsed = await standing.lapsed()
            if lapsed is not None:
                yield {"event": "end", "data": orjson.dumps({"reason": lapsed}).decode()}
                return
            for entry_id, body in await store.read_stream(
                    tenant, position, block_ms=int(STANDING_CHECK_SECONDS * 1000)):
                position = entry_id
                if not _visible(caller, body.get("alert") or {}):
                    continue
                yield {"id": entry_id, "event": body["kind"], "data": orjson.dumps(body).decode()}
            await asyncio.sleep(0)

    return EventSourceResponse(events(), ping=15)


class Endpoint(BaseModel):
    url: HttpUrl
    secret: str = Field(min_length=16, max_length=256)


@router.put("/webhooks", dependencies=[ADMINISTER], responses=problem_responses(400))
async def put_webhooks(services: ServicesDep, tenant: TenantDep,
                       endpoints: list[Endpoint]) -> dict[str, Any]:
    """Replace the tenant's webhook endpoints. Each alert transition (except history) is
    POSTed to each, signed (`X-Salespulse-Signature: sha256=HMAC(secret, "<timestamp>." +
    body)`, `X-Salespulse-Timestamp`), with `Idempotency-Key` = the transition id, retried
    with exponential backoff and dead-lettered after `WEBHOOK_ATTEMPTS` failures."""
    await _store(services).set_webhooks(
        tenant, [{"url": str(e.url), "secret": e.secret} for e in endpoints])
    return {"endpoints": [str(e.url) for e in endpoints]}


@router.get("/webhooks", dependencies=[ADMINISTER])
async def get_webhooks(services: ServicesDep, tenant: TenantDep) -> dict[str, Any]:
    """The configured endpoints (secrets are never returned) and the dead-lettered
    deliveries."""
    store = _store(services)
    return {"endpoints": [e["url"] for e in await store.webhooks(tenant)],
            "dead_letters": await store.dead_letters(tenant)}


def _listing_row(alert: dict[str, Any]) -> dict[str, Any]:
    # The customer rules carry `key_customer` in their facts; the deal rules make exactly
    # the deals of key customers `high`.
    facts = alert.get("facts") or {}
    return {"rule": alert["rule"], "subject": alert["subject"],
            "since": alert["became_true_at"], "evidence": alert["evidence"],
            "severity": alert["severity"], "owner": alert["owner"],
            "key_customer": bool(facts.get("key_customer", alert["severity"] == "high")),
            "facts": facts}


async def _listed(services: ServicesDep, caller: Principal,
                  rules: tuple[str, ...]) -> dict[str, Any]:
    """The alerter's alerts of `rules` whose condition holds (acknowledged and snoozed ones
    too: a user's action does not unstall a deal), key customers first, then the longest.

    The alerter judges the same rules continuously over its own fold of the events, so its
    open alerts are the answer at any size, for the cost of reading them; judging every
    record per request cost 0.45-0.9 s at 10,000 deals (docs/BENCHMARKS.md)."""
    alerts = await _store(services).alerts(caller.tenant)
    # Listed now, so a manager reads the rows of the reps now in the team (an alert's
    # `team` is the owner's when it opened).
    members = set(await team_of(services, caller))
    rows = [_listing_row(alert) for alert, _ in alerts
            if alert["rule"] in rules and alert["state"] == "open"
            and caller.may_read_owner(alert["owner"],
                                      caller.team_id if alert["owner"] in members else None)]
    rows.sort(key=lambda r: (not r["key_customer"], r["since"], r["subject"], r["rule"]))
    return {"as_of": datetime.now(UTC).isoformat(), "judged_by": "alerter",
            "count": len(rows), "rows": rows}


@router.get("/deals/stalled", dependencies=[READ], responses=READ_PROBLEMS)
async def stalled_deals(services: ServicesDep, caller: PrincipalDep) -> dict[str, Any]:
    """Open deals stalled now: in their stage at least the stage's threshold (the 80th
    percentile of dwell in that stage among won deals once there are 10, else the pipeline's
    `stall_days`, else ALERT_STALL_DAYS = 21), or without activity for ALERT_INACTIVE_DAYS
    (14) unless a scheduled next step is not yet due. Key customers' deals first, then the
    longest stalled. One row per deal and rule, with its evidence: the alerter's alerts of
    these rules whose condition holds (acknowledged or snoozed too; `judged_by`: `alerter`,
    `since`: when the condition became true, in event time)."""
    listed = await _listed(services, caller, ("stalled_deal", "inactive_deal"))
    rows = listed.pop("rows")
    return {**listed, "deals": rows}


@router.get("/customers/at-risk", dependencies=[READ], responses=READ_PROBLEMS)
async def customers_at_risk(services: ServicesDep, caller: PrincipalDep) -> dict[str, Any]:
    """Customers at churn risk now: no order for more than 2 x their median gap between
    orders (at least 3 orders), or interactions in the last 30 days below half of their rate
    in the 90 days before. Key customers (the top 20% by booked value) first, then the
    longest at risk. One row per customer and rule, with its evidence: the alerter's alerts
    of these rules whose condition holds (acknowledged or snoozed too; `judged_by`:
    `alerter`)."""
    listed = await _listed(services, caller, ("churn_risk", "engagement_drop"))
    rows = listed.pop("rows")
    return {**listed, "customers": rows}
