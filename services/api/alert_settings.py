"""A tenant's alert routing through the API (admin): read with secrets hidden, replace
whole. Each change is an event in the alert settings log (durable, in backups) and is
then written to Redis for the alerter. Docs: docs/ALERTS.md, "Settings and actions"."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import JSONResponse

from alerts.routing import Routing
from alerts.routing_codec import RoutingInvalid, dump, load
from services.alerter.routing_store import publish_routing, rederive, republish_if_stale
from services.alerter.secrets import Sealer, SecretUnreadable
from services.alerter.settings_log import AlertActions, AlertRouting, AlertSettingsLog
from services.api.auth import ADMINISTER, PrincipalDep, TenantDep
from services.api.deps import Services, ServicesDep
from services.api.problems import problem, problem_responses

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
log = structlog.get_logger("api.alert_settings")


def alert_log(services: Services) -> AlertSettingsLog:
    if services.alert_log is None:
        raise HTTPException(503, "the alert settings log is not open in this process")
    return services.alert_log


def shown(document: dict[str, Any]) -> dict[str, Any]:
    """The document as the API shows it: each channel's secret only `"set"` or null."""
    return {**document, "channels": [{**c, "secret": "set" if c.get("secret") else None}
                                     for c in document.get("channels", [])]}


async def _stored(services: Services, tenant: str) -> dict[str, Any] | None:
    routing = await asyncio.to_thread(alert_log(services).routing, tenant)
    return None if routing is None else routing.document


@router.get("/routing", dependencies=[ADMINISTER])
async def get_routing(services: ServicesDep, tenant: TenantDep) -> dict[str, Any]:
    """The tenant's routing: `channels` (secrets never returned: `"secret": "set"` or
    null), `routes`, `escalations`, `quiet` hours, `daily_cap`, `key_customers_to_manager`,
    `contacts`. Never set: the empty routing (nobody is told but through the dashboard,
    SSE and webhooks)."""
    document = await _stored(services, tenant)
    if document is None:
        return shown(dump(Routing(), lambda secret: secret))
    # Redis may have lost it, or missed the last change: the log is the truth.
    await republish_if_stale(services.redis, services.settings.redis_prefix, tenant, document)
    return shown(document)


_UNWRITABLE = "not storable: a whole number beyond 64 bits, or text with a lone surrogate"


def _unwritable(value: Any, at: str) -> str | None:
    """The dotted path of the first value orjson cannot write, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unwritable(key, at) or _unwritable(item, f"{at}.{key}" if at else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unwritable(item, f"{at}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, int) and not isinstance(value, bool):
        return None if -2**63 <= value < 2**64 else at
    elif isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return at
    return None


def _with_kept_secrets(doc: dict[str, Any], stored: dict[str, Any] | None,
                       sealer: Sealer) -> dict[str, Any]:
    """`doc` with each channel's secret in clear: the one sent, else (absent, null or
    `"set"`) the stored one of the channel with that id; `""` removes it."""
    kept = {c.get("id"): c.get("secret") for c in (stored or {}).get("channels", [])}
    channels = doc.get("channels")
    if not isinstance(channels, list):
        return doc  # `load` names what is wrong
    out = []
    for index, channel in enumerate(channels):
        if isinstance(channel, dict):
            secret = channel.get("secret")
            if secret in (None, "set"):
                known = channel.get("id")
                sealed = kept.get(known) if isinstance(known, str) else None
                try:
                    secret = sealer.unseal(sealed) if sealed else None
                except SecretUnreadable:
                    raise RoutingInvalid(f"channels[{index}].secret", "the stored secret was "
                                         "sealed with another key: send it again") from None
            channel = {**channel, "secret": secret or None}
        out.append(channel)
    return {**doc, "channels": out}


@router.put("/routing", dependencies=[ADMINISTER], responses=problem_responses(400, 422))
async def put_routing(services: ServicesDep, caller: PrincipalDep,
                      document: dict[str, Any] = Body()) -> Any:  # noqa: B008 - FastAPI's way
    """Replace the tenant's routing (the form `GET` shows). A channel sent without a secret
    (absent, null or `"set"`) keeps its stored one; `""` removes it. A document that cannot
    be read is a 422 problem naming the field (`errors[0].field`, a dotted path such as
    `routes[0].channel`). Stored as an event in the alert settings log (secrets sealed),
    then given to the alerter."""
    tenant = caller.tenant
    unwritable = _unwritable(document, "")
    if unwritable is not None:  # JSON can say it, the store cannot keep it
        return problem(422, "invalid-routing", "Invalid alert routing",
                       f"{unwritable}: {_UNWRITABLE}",
                       [{"field": unwritable, "message": _UNWRITABLE}])
    sealer = Sealer(services.settings)
    stored = await _stored(services, tenant)
    try:  # secrets in clear from here to `dump`, which seals them
        routing = load(_with_kept_secrets(document, stored, sealer), lambda clear: clear)
    except RoutingInvalid as invalid:
        return problem(422, "invalid-routing", "Invalid alert routing",
                       str(invalid), [{"field": invalid.field, "message": invalid.message}])
    sealed = dump(routing, sealer.seal)
    await asyncio.to_thread(alert_log(services).set_routing, tenant, sealed, caller.subject,
                            datetime.now(UTC))
    await publish_routing(services.redis, services.settings.redis_prefix, tenant, sealed)
    return JSONResponse(shown(sealed))


def _read_all(alert_settings: AlertSettingsLog, routing_only: bool
              ) -> list[AlertRouting | AlertActions]:
    return list(alert_settings.everything(routing_only=routing_only))


ROUTING_CHECK_SECONDS = 60.0  # how soon a Redis flushed under a running API has routing again


async def rederive_all(services: Services) -> None:
    """At start-up, what the log holds and Redis lacks is written back (a restore, a flush);
    then, every ROUTING_CHECK_SECONDS, each tenant's routing (Redis lost while running)."""
    alert_settings = services.alert_log
    if alert_settings is None:
        return
    routing_only = False
    while True:
        try:
            aggregates = await asyncio.to_thread(_read_all, alert_settings, routing_only)
            written = await rederive(services.redis, services.settings.redis_prefix,
                                     aggregates)
            if written or not routing_only:
                log.info("alert_settings.rederived", aggregates=len(aggregates),
                         written=written)
        except Exception as exc:  # noqa: BLE001 - the API serves anyway; next round
            log.warning("alert_settings.not_rederived", error=f"{type(exc).__name__}: {exc}")
        routing_only = True
        await asyncio.sleep(ROUTING_CHECK_SECONDS)
