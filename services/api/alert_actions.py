"""One-tap acknowledge and snooze from a message's link, and an alert history per deal or
customer. The link's token is the credential of the two `act` routes (docs/SECURITY.md):
it names the tenant, alert, recipient and action, is signed, expires, and acts once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse

from alerts.lifecycle import AlertClosed, acknowledge, snooze, user_transition_id
from services.access.principal import Principal
from services.alerter.links import Grant, LinkInvalid, LinkSigner
from services.alerter.outbox import Outbox
from services.alerter.routing_store import action
from services.alerter.secrets import link_key
from services.alerter.settings_log import LinkSpent
from services.alerter.store import AlertStore, effective_fields
from services.api import act_page
from services.api.alert_settings import alert_log
from services.api.auth import READ, PrincipalDep
from services.api.deps import Services, ServicesDep
from services.api.problems import READ_PROBLEMS

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
SNOOZE_FOR = timedelta(hours=24)  # a one-tap snooze: until this time tomorrow


def outbox(services: Services) -> Outbox:
    """The alerter's delivery outbox, read for the history (opened on first use)."""
    if services.outbox is None:
        services.outbox = Outbox(services.settings)
    return services.outbox


def signer(services: Services) -> LinkSigner:
    settings = services.settings
    return LinkSigner(link_key(settings), settings.public_url,
                      timedelta(hours=settings.alert_link_hours))


def _store(services: Services) -> AlertStore:
    return AlertStore(services.redis, services.settings.redis_prefix)


async def apply_action(services: Services, tenant: str, alert: dict[str, Any],
                       user: dict[str, Any], kind: str, by: str | None, via: str,
                       until: datetime | None = None, link: str | None = None,
                       credential: str | None = None) -> dict[str, Any]:
    """Acknowledge or snooze `alert`: recorded in the alert settings log first (durable;
    `LinkSpent` if `link` acted before), then as the user's transition in Redis. Raises
    AlertClosed, or ValueError for an `until` not ahead, before recording anything."""
    now = datetime.now(UTC)
    changed = ({**user, **acknowledge(alert, now, by)} if kind == "acknowledged"
               else snooze(alert, until or now + SNOOZE_FOR, now, user))
    stored = action(kind, by, via, now, until=(until or now + SNOOZE_FOR) if kind == "snoozed"
                    else None, link=link, credential=credential)
    await asyncio.to_thread(alert_log(services).act, tenant, alert["id"], stored)
    transition = {"id": user_transition_id(alert["id"], kind, now), "kind": kind,
                  "at": now.isoformat()}
    await _store(services).append_user_transition(tenant, alert, changed, transition)
    return effective_fields(alert, changed, now)


def _html(body: str, status: int = 200) -> HTMLResponse:
    # Never cached, never indexed: the page is about one person's link.
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store",
                                               "X-Robots-Tag": "noindex"})


async def _granted(services: Services, token: str, lang: act_page.Language
                   ) -> tuple[Grant, dict[str, Any], dict[str, Any]] | HTMLResponse:
    try:
        grant = signer(services).check(token, datetime.now(UTC))
    except LinkInvalid as invalid:
        expired = "expired" in str(invalid)  # LinkInvalid says which in its message only
        return _html(act_page.message(lang, "expired" if expired else "invalid"), 403)
    found = await _store(services).alert(grant.tenant, grant.alert_id)
    if found is None:
        return _html(act_page.message(lang, "missing"), 404)
    if await asyncio.to_thread(alert_log(services).link_spent, grant.tenant, grant.alert_id,
                               grant.nonce):
        return _html(act_page.message(lang, "used"), 409)
    return grant, found[0], found[1]


# Pages, not API operations (like /dashboard): left out of the OpenAPI document, whose
# every operation wants a credential and answers errors as problems.
@router.get("/act/{token}", response_class=HTMLResponse, include_in_schema=False)
async def act_page_view(services: ServicesDep, token: str,
                        accept_language: Annotated[str | None, Header()] = None
                        ) -> HTMLResponse:
    """The page a one-tap link opens: what it will do, and a button that does it (POST).
    Opening it changes nothing. No API key: the token is the credential."""
    lang = act_page.language(accept_language)
    granted = await _granted(services, token, lang)
    if isinstance(granted, HTMLResponse):
        return granted
    grant, alert, _user = granted
    summary = f"{alert['rule']} · {alert['subject']} · {alert['evidence']}"
    return _html(act_page.confirmation(lang, grant.action, summary))


@router.post("/act/{token}", response_class=HTMLResponse, include_in_schema=False)
async def act(services: ServicesDep, token: str,
              accept_language: Annotated[str | None, Header()] = None) -> HTMLResponse:
    """Acknowledge, or snooze for 24 hours, the alert the link names, as its recipient
    (`via: link`). The link acts once: again, 409. Expired or not signed here: 403."""
    lang = act_page.language(accept_language)
    granted = await _granted(services, token, lang)
    if isinstance(granted, HTMLResponse):
        return granted
    grant, alert, user = granted
    kind = "acknowledged" if grant.action == "acknowledge" else "snoozed"
    try:
        done = await apply_action(services, grant.tenant, alert, user, kind, grant.recipient,
                                  "link", link=grant.nonce)
    except AlertClosed:
        return _html(act_page.message(lang, "closed", state=alert["state"]), 409)
    except LinkSpent:  # spent by a concurrent tap
        return _html(act_page.message(lang, "used"), 409)
    if kind == "acknowledged":
        return _html(act_page.message(lang, "done_acknowledge"))
    return _html(act_page.message(lang, "done_snooze", until=done["snoozed_until"][:16]))


async def _transitions(store: AlertStore, tenant: str, ids: set[str]
                       ) -> dict[str, list[dict[str, Any]]]:
    """Each alert's transitions from the alert stream, in order, without their alert."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    position = "-"
    while True:
        entries: Any = await store.redis.xrange(store.key(tenant, "alerts:stream"),
                                                min=position, count=2000)
        for _entry_id, fields in entries:
            body = orjson.loads(fields[b"data"])
            alert_id = (body.get("alert") or {}).get("id")
            if alert_id in out:
                out[alert_id].append({k: v for k, v in body.items() if k != "alert"})
        if len(entries) < 2000:
            return out
        last = entries[-1][0]
        position = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _visible(caller: Principal, alert: dict[str, Any]) -> bool:
    return caller.may_read_owner(alert.get("owner"), alert.get("team"))


@router.get("/history", dependencies=[READ], responses=READ_PROBLEMS)
async def history(services: ServicesDep, caller: PrincipalDep,
                  subject: Annotated[str, Query(min_length=1, max_length=256,
                                                description="a deal or customer id")],
                  kind: Annotated[str | None, Query(
                      max_length=32, description="the subject's kind (deal, customer, lead, "
                                                 "rep, team), when ids repeat across kinds")]
                  = None) -> dict[str, Any]:
    """Every alert on `subject` (a deal or a customer, or a lead, a rep), newest first, with
    its `transitions` (those still on the alert stream, its latest 100,000), `deliveries`
    (who was told, through which channel, when, the outcome: docs/ALERTS.md) and `actions`
    (acknowledged or snoozed: by whom, when, `via` the API or a one-tap link)."""
    tenant = caller.tenant
    store = _store(services)
    now = datetime.now(UTC)
    found = [effective_fields(a, u, now) for a, u in await store.alerts(tenant)
             if a.get("subject") == subject and kind in (None, a.get("subject_kind"))
             and _visible(caller, a)]
    found.sort(key=lambda a: (a["became_true_at"], a["id"]), reverse=True)
    transitions = await _transitions(store, tenant, {a["id"] for a in found})
    log = alert_log(services)
    rows = []
    for alert in found:
        acted = await asyncio.to_thread(log.actions, tenant, alert["id"])
        told = await outbox(services).deliveries(tenant, alert["id"])
        rows.append({**alert, "transitions": transitions[alert["id"]], "deliveries": told,
                     "actions": [{k: v for k, v in a.items() if k not in ("link", "credential")}
                                 for a in (acted.actions if acted else [])]})
    return {"subject": subject, "count": len(rows), "alerts": rows}
