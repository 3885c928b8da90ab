"""API keys of the caller's tenant (admin only): create (the key is shown once), list,
revoke. Revocation takes effect on the next request, in every API process."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.access.principal import Role
from services.api.auth import PrincipalDep
from services.api.deps import ServicesDep
from services.api.problems import problem, problem_responses

router = APIRouter(prefix="/v1", tags=["access"])  # admins only (see app.py)
identity = APIRouter(prefix="/v1", tags=["access"])  # any credential
# No NUL: PostgreSQL text cannot hold one (it answered 500 before this pattern).
KeyId = Annotated[str, Path(max_length=64, pattern=r"^[^\x00]+$")]
_ID = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\x00]+$")


class NewScope(BaseModel):
    # Said in the JSON Schema too: a rep's key names its rep, a manager's its team.
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"role": {"const": "rep"}}, "required": ["role"]},
         "then": {"required": ["rep_id"], "properties": {"rep_id": {"type": "string"}}}},
        {"if": {"properties": {"role": {"const": "manager"}}, "required": ["role"]},
         "then": {"required": ["team_id"], "properties": {"team_id": {"type": "string"}}}}]})

    role: Role
    rep_id: str | None = _ID
    team_id: str | None = _ID

    @model_validator(mode="after")
    def _scope(self) -> NewScope:
        if self.role == "rep" and not self.rep_id:
            raise ValueError("role rep needs rep_id")
        if self.role == "manager" and not self.team_id:
            raise ValueError("role manager needs team_id")
        return self


class NewKey(NewScope):
    name: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    rate_limit: str | None = Field(default=None, max_length=64, description=(
        "overrides the service's RATE_LIMIT for this key, e.g. `100/minute`"))

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_rate(value)
            except ValueError:
                raise ValueError("not a rate such as `100/minute` or `10/second`") from None
        return value


@router.post("/keys", status_code=201, responses=problem_responses(400))
async def create_key(body: NewKey, services: ServicesDep, caller: PrincipalDep) -> JSONResponse:
    """A new key for the caller's tenant. `key` is in this answer only; store it now."""
    record, token = await asyncio.to_thread(
        services.auth.keys.create, caller.tenant, body.role, rep_id=body.rep_id,
        team_id=body.team_id, name=body.name, rate_limit=body.rate_limit)
    return JSONResponse({**record.public(), "key": token}, status_code=201)


@router.get("/keys")
async def list_keys(services: ServicesDep, caller: PrincipalDep) -> dict[str, Any]:
    """The tenant's keys, revoked ones included; never their secrets."""
    records = await asyncio.to_thread(services.auth.keys.list, caller.tenant)
    return {"keys": [r.public() for r in records]}


@router.delete("/keys/{key_id}", response_model=None, responses=problem_responses(404, 503))
async def revoke_key(key_id: KeyId, services: ServicesDep,
                     caller: PrincipalDep) -> dict[str, Any] | JSONResponse:
    """Revoke a key of this tenant at once, in every API process (idempotent). 404 for a key
    of another tenant; 503 `revocation-unannounced` when the key is revoked in the database
    but Redis could not tell the other API processes (DELETE again)."""
    record = await services.auth.revoke(caller.tenant, key_id)  # 503 if not announced
    if record is None:
        return problem(404, "unknown-key", "Unknown key", f"no key {key_id!r} in this tenant")
    return record.public()


@router.patch("/keys/{key_id}", response_model=None,
              responses=problem_responses(400, 404, 503))
async def rescope_key(key_id: KeyId, body: NewScope,
                      services: ServicesDep, caller: PrincipalDep
                      ) -> dict[str, Any] | JSONResponse:
    """Give a key of this tenant another role and scope, at once in every API process (as a
    revocation is announced); streams open on it end. 404 for a key of another tenant."""
    record = await services.auth.rescope(caller.tenant, key_id, body.role, body.rep_id,
                                         body.team_id)
    if record is None:
        return problem(404, "unknown-key", "Unknown key", f"no key {key_id!r} in this tenant")
    return record.public()


@identity.get("/me")
async def me(caller: PrincipalDep) -> dict[str, Any]:
    """The caller's tenant, role and scope: what the dashboard shows and locks."""
    return {"tenant": caller.tenant, "role": caller.role, "credential": caller.subject,
            "rep_id": caller.rep_id, "team_id": caller.team_id}
