"""CRM connectors: `POST /v1/connectors/hubspot`, `POST /v1/connectors/pipedrive` (the CRM's
own webhooks, authenticated the CRM's way, not with a salespulse credential), and each
connector's status, dead letters, mapping and credentials (salespulse credentials)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Annotated, Any, Literal

import orjson
import structlog
from eventsourcing.persistence import IntegrityError, PersistenceError
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response

from services import bootstrap
from services.api.auth import ADMINISTER, WRITE, TenantDep
from services.api.deps import Services, ServicesDep
from services.api.problems import problem, problem_responses
from services.connectors import hubspot, intake, pipedrive
from services.connectors.mapping import Mapped, MappingError
from services.connectors.store import ConnectorStore
from services.eventstore.ledger import StoreUnavailable

log = structlog.get_logger("connectors")
router = APIRouter(prefix="/v1/connectors", tags=["connectors"])
ConnectorName = Literal["hubspot", "pipedrive", "salesforce"]
_WEBHOOK_PROBLEMS = problem_responses(400, 401, 413, 503)
_SECRET_FIELDS = {"hubspot": ("app_secret",), "pipedrive": ("username", "password"),
                  "salesforce": ()}


def _store(services: Services) -> ConnectorStore:
    return bootstrap.connector_store(services.settings, services.redis)


def _refused(detail: str, scheme: str) -> Response:
    answer = problem(401, "connector-unauthenticated", "Notification not authenticated", detail)
    answer.headers["WWW-Authenticate"] = scheme
    return answer


async def _ingest(services: Services, connector: str, tenant: str,
                  mapped: list[Mapped]) -> list[intake.Result] | Response:
    settings = services.settings
    try:
        results = await asyncio.get_running_loop().run_in_executor(
            services.writer, lambda: intake.record(
                services.ledger, tenant, mapped, tz=settings.tenant_timezone,
                hold_for=settings.hold_for))
    except (StoreUnavailable, IntegrityError, PersistenceError) as exc:
        # The CRM retries a failed delivery; the ids repeat, so nothing doubles.
        answer = problem(503, "store-unavailable", "Event store unavailable",
                         f"retry later ({type(exc).__name__})")
        answer.headers["Retry-After"] = "5"
        return answer
    await _store(services).note(connector, tenant, results, [m.payload for m in mapped])
    return results


def _answer(results: list[intake.Result]) -> JSONResponse:
    return JSONResponse({"results": [
        {"key": r.key, "outcome": r.outcome, **({"reason": r.reason} if r.reason else {})}
        for r in results]})


@router.post("/hubspot", responses=_WEBHOOK_PROBLEMS, openapi_extra={"requestBody": {
    "content": {"application/json": {"schema": {"type": "array", "maxItems": hubspot.MAX_BATCH,
                                                "items": {"type": "object"}}}}}})
async def post_hubspot(request: Request, services: ServicesDep) -> Response:
    """HubSpot's webhook notifications (up to 100 a request), signed with the tenant's app
    secret (`X-HubSpot-Signature-v3`); each portal names its tenant (the mapping's
    `account`). A bad or stale signature is 401 and nothing is stored."""
    scheme = 'HubSpot-Signature-v3 realm="salespulse"'
    if not request.headers.get("X-HubSpot-Signature-v3"):
        return _refused("X-HubSpot-Signature-v3 is required", scheme)
    body = await request.body()
    try:
        batch = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(400, "malformed-json", "Malformed JSON", str(exc))
    if not isinstance(batch, list) or not batch:
        return problem(400, "invalid-batch", "Invalid batch",
                       "HubSpot sends a non-empty JSON array of notifications")
    if len(batch) > hubspot.MAX_BATCH:
        return problem(413, "batch-too-large", "Batch too large",
                       f"{len(batch)} notifications; HubSpot sends at most {hubspot.MAX_BATCH}")
    store = _store(services)
    portals = {str(n.get("portalId")) for n in batch if isinstance(n, dict)}
    tenants = {p: await store.tenant_of("hubspot", "account", p) for p in portals}
    unknown = sorted(p for p, t in tenants.items() if t is None)
    if unknown or not portals:
        return _refused(f"portal {unknown[0] if unknown else '?'} is not connected to a "
                        "tenant (PUT /v1/connectors/hubspot/mapping with its account)", scheme)
    now_ms = int(time.time() * 1000)
    for tenant in set(tenants.values()):
        assert tenant is not None
        secret = await store.secret("hubspot", tenant)
        why = "no app secret is set for this portal's tenant" if not secret else \
            hubspot.verify_v3(secret["app_secret"], request.method, str(request.url), body,
                              request.headers.get("X-HubSpot-Request-Timestamp"),
                              request.headers.get("X-HubSpot-Signature-v3"), now_ms)
        if why:
            log.warning("connector.refused", connector="hubspot", tenant=tenant, reason=why)
            return _refused(why, scheme)
    results: list[intake.Result] = []
    ordered = sorted({t for t in tenants.values() if t})

    def tenant_of(n: Any) -> str | None:
        # An entry that is not an object names no portal: the first tenant dead-letters it.
        return tenants.get(str(n.get("portalId"))) if isinstance(n, dict) else ordered[0]

    for tenant in ordered:
        ours = [n for n in batch if tenant_of(n) == tenant]
        mapping = await store.mapping("hubspot", tenant)
        done = await _ingest(services, "hubspot", tenant, hubspot.map_batch(ours, mapping))
        if isinstance(done, Response):
            return done
        results.extend(done)
    return _answer(results)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


@router.post("/pipedrive", responses=_WEBHOOK_PROBLEMS, openapi_extra={"requestBody": {
    "content": {"application/json": {"schema": {"type": "object"}}}}})
async def post_pipedrive(request: Request, services: ServicesDep) -> Response:
    """A Pipedrive webhook v2 notification, with the HTTP basic auth credentials set for the
    tenant (`PUT /v1/connectors/pipedrive/credentials`); they name the tenant."""
    scheme = 'Basic realm="salespulse pipedrive"'
    credentials = _basic(request)
    store = _store(services)
    tenant = await store.tenant_of("pipedrive", "user", credentials[0]) if credentials else None
    secret = await store.secret("pipedrive", tenant) if tenant else None
    if credentials is None or secret is None or \
            not store.password_matches(secret, credentials[1]):
        return _refused("HTTP basic auth with the credentials set for the tenant is required",
                        scheme)
    assert tenant is not None
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return problem(400, "malformed-json", "Malformed JSON", str(exc))
    mapping = await store.mapping("pipedrive", tenant)
    company = payload.get("meta", {}).get("company_id") if isinstance(payload, dict) else None
    if mapping.account and company is not None and str(company) != mapping.account:
        return _refused(f"company {company} is not this tenant's account", scheme)
    done = await _ingest(services, "pipedrive", tenant, [pipedrive.map_webhook(payload, mapping)])
    return done if isinstance(done, Response) else _answer(done)


@router.get("/{name}/status", dependencies=[WRITE])
async def get_status(name: ConnectorName, services: ServicesDep,
                     tenant: TenantDep) -> dict[str, Any]:
    """The last notification's time and the notifications counted by outcome: `accepted`,
    `held` (waiting for their subject), `duplicate` (a retry), `dead_lettered`, `skipped`
    (an object or field not tracked)."""
    return await _store(services).status(name, tenant)


@router.get("/{name}/dead-letters", dependencies=[WRITE])
async def get_dead_letters(name: ConnectorName, services: ServicesDep, tenant: TenantDep,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                           offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Notifications that could not be mapped or that the ledger refused, newest first,
    each with the payload as received and the reason."""
    total, items = await _store(services).dead_letters(name, tenant, limit, offset)
    return {"total": total, "dead_letters": items}


@router.get("/{name}/mapping", dependencies=[ADMINISTER])
async def get_mapping(name: ConnectorName, services: ServicesDep,
                      tenant: TenantDep) -> dict[str, Any]:
    """The tenant's mapping, defaults filled in (credentials are never returned)."""
    return (await _store(services).mapping(name, tenant)).public()


@router.put("/{name}/mapping", dependencies=[ADMINISTER], responses=problem_responses(400, 422))
async def put_mapping(name: ConnectorName, services: ServicesDep, tenant: TenantDep,
                      raw: Annotated[dict[str, Any], Body()]) -> Response:
    """Replace the tenant's mapping: `account` (HubSpot portalId, Pipedrive company_id),
    `stages` (CRM stage value or id -> pipeline stage), `won`, `lost`, `owners` (CRM owner
    id -> existing rep id), `team_id`, `reps_since`, `default_owner`, `dimensions`
    (`source`/`product` -> CRM field), `activity_kinds`, `link_customers`. Keys left out
    keep the CRM's defaults."""
    try:
        mapping = await _store(services).set_mapping(name, tenant, raw)
    except MappingError as exc:
        return problem(422, "invalid-mapping", "Invalid mapping", str(exc),
                       [{"field": exc.field, "message": exc.message}])
    return JSONResponse(mapping.public())


@router.put("/{name}/credentials", status_code=204, dependencies=[ADMINISTER],
            responses=problem_responses(400, 422))
async def put_credentials(name: ConnectorName, services: ServicesDep, tenant: TenantDep,
                          raw: Annotated[dict[str, Any], Body()]) -> Response:
    """Set what the CRM authenticates with: HubSpot `app_secret`; Pipedrive `username` and
    `password` (the webhook's http_auth_user / http_auth_password). Never returned."""
    fields = _SECRET_FIELDS[name]
    bad = [f for f in fields if not isinstance(raw.get(f), str) or not raw[f]] or \
        [f for f in raw if f not in fields]
    if not fields or bad:
        field = bad[0] if bad else ""
        return problem(422, "invalid-credentials", "Invalid credentials",
                       f"{name} takes {', '.join(fields) or 'no credentials'}",
                       [{"field": field, "message": "required, a non-empty string"
                         if field in fields else "unknown"}])
    store = _store(services)
    if name == "pipedrive":
        owner = await store.tenant_of(name, "user", raw["username"])
        if owner is not None and owner != tenant:
            return problem(422, "invalid-credentials", "Invalid credentials",
                           "this username is taken", [{"field": "username",
                                                       "message": "taken"}])
    await store.set_secret(name, tenant, {f: raw[f] for f in fields})
    return Response(status_code=204)
