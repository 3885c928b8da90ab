"""Exports: the deals the filters select, as CSV (spreadsheets) or JSON, within the caller's
scope like every other read (a rep exports their own deals, a manager their team's).

Streamed: the columns the rows need are copied under the store's lock, then formatted a
chunk at a time in a thread while the client reads, so a million deals never become a
million dictionaries, nor wait whole in memory for a client that hangs up."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import Counter

from projections.columnar_export import csv_chunks, json_chunks, selected_deals
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.problems import problem, problem_responses
from services.api.views import FiltersDep

router = APIRouter(prefix="/v1/export", tags=["analytics"])
EXPORTS = Counter("salespulse_exports_total", "Deal exports asked for", ["outcome"])
RETRY_SECONDS = 5


_ROWS = {"content": {
    "text/csv": {"schema": {"type": "string", "description": "a header row, then a deal a row"}},
    "application/json": {"schema": {"type": "object", "required": ["count", "deals"],
                                    "properties": {"count": {"type": "integer"},
                                                   "deals": {"type": "array",
                                                             "items": {"type": "object"}}}}}}}


@router.get("/deals", response_model=None, responses={200: _ROWS, **problem_responses(503)})
async def export_deals(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                       format: Literal["csv", "json"] = "csv"  # noqa: A002
                       ) -> StreamingResponse | JSONResponse:
    """One row per deal the filters select (created in `from`..`to`, as in the funnel):
    deal_id, status, current stage, amount, created_at, closed_at and its dimensions (team
    at the close, or now while open). CSV with a header row, UTF-8, or JSON.

    503 `exports-busy` (with Retry-After) while this process streams `EXPORTS_AT_ONCE`
    exports already."""
    slot = services.exports.take()
    if slot is None:
        EXPORTS.labels("refused").inc()
        answer = problem(503, "exports-busy", "Too many exports at once",
                         f"this API process streams {services.exports.slots} exports at "
                         "once; try again shortly")
        answer.headers["Retry-After"] = str(RETRY_SECONDS)
        return answer
    try:
        deals = await services.columns.copied(tenant, lambda columns: selected_deals(columns,
                                                                                     selected))
    except BaseException:
        slot.give_back()
        raise
    EXPORTS.labels("streamed").inc()
    # Plain iterators: Starlette pulls each chunk in a worker thread, and stops pulling
    # (dropping the copies and the slot with the iterator) when the client hangs up.
    if format == "json":
        return StreamingResponse(slot.holding(json_chunks(deals)), media_type="application/json")
    return StreamingResponse(slot.holding(csv_chunks(deals)), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="deals.csv"'})
