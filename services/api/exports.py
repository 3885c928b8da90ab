"""Exports: the deals the filters select, as CSV (spreadsheets) or JSON, within the caller's
scope like every other read (a rep exports their own deals, a manager their team's)."""

from __future__ import annotations

import csv
import io
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from projections.columnar_export import deal_rows
from projections.export import DEAL_COLUMNS
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.views import FiltersDep, question

router = APIRouter(prefix="/v1/export", tags=["analytics"])


_ROWS = {"content": {
    "text/csv": {"schema": {"type": "string", "description": "a header row, then a deal a row"}},
    "application/json": {"schema": {"type": "object", "required": ["count", "deals"],
                                    "properties": {"count": {"type": "integer"},
                                                   "deals": {"type": "array",
                                                             "items": {"type": "object"}}}}}}}


@router.get("/deals", response_model=None, responses={200: _ROWS})
async def export_deals(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                       format: Literal["csv", "json"] = "csv") -> Response:  # noqa: A002
    """One row per deal the filters select (created in `from`..`to`, as in the funnel):
    deal_id, status, current stage, amount, created_at, closed_at and its dimensions (team
    at the close, or now while open). CSV with a header row, UTF-8, or JSON."""
    rows = await services.columns.answer(tenant, ("export", question(selected)),
                                         lambda columns: deal_rows(columns, selected))
    if format == "json":
        return JSONResponse({"count": len(rows), "deals": rows})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DEAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="deals.csv"'})
