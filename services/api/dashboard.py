"""The manager's dashboard (看板): static page and assets at /dashboard, plus the two small
reads it needs beyond the analytics endpoints: display settings and the filter lists.

The page itself only calls the public API; every figure it shows comes from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import FileResponse, RedirectResponse

from projections.columnar_dimensions import dimensions
from projections.snapshot import Filters
from services.api.auth import READ, PrincipalDep, get_principal
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS
from services.api.views import question, scoped

STATIC = Path(__file__).parent / "dashboard"
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".html": "text/html", ".svg": "image/svg+xml", ".json": "application/json"}

router = APIRouter()


@router.get("/dashboard", include_in_schema=False)
async def page() -> FileResponse:
    # no-cache: a redeployed page is picked up on the next load; it is small.
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/", include_in_schema=False)
async def page_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get("/dashboard/{name:path}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        hint = " (run `make dashboard`)" if name.startswith("vendor/") else ""
        raise HTTPException(404, f"no such dashboard asset: {name}{hint}")
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"Cache-Control": "no-cache"})


@router.get("/v1/settings/display", tags=["settings"], dependencies=[Depends(get_principal)])
async def display(services: ServicesDep) -> dict[str, str]:
    """How to show figures: `currency` (ISO 4217, setting CURRENCY, default CNY) that amounts
    are in, and the tenant's `timezone` (setting TENANT_TIMEZONE) that dates and periods are
    read in."""
    return {"currency": services.settings.currency,
            "timezone": services.settings.tenant_timezone}


@router.get("/v1/dimensions", tags=["analytics"], dependencies=[READ], responses=READ_PROBLEMS,
            response_model=dict[str, Any])
async def get_dimensions(services: ServicesDep, caller: PrincipalDep) -> Response:
    """What the filters can take: `reps` (id, name, current team/manager/region) and, for
    team, manager, region, source, product and segment, the sorted distinct values occurring
    on the tenant's reps, deals, leads, orders and activities."""
    # Only what the caller may filter on: a rep sees their own values, a manager their team's.
    within = await scoped(services, caller, Filters())
    return await services.columns.answer_json(caller.tenant, ("dimensions", question(within)),
                                              lambda columns: dimensions(columns, within))
