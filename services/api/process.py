"""Reading the sales process: activity effort and cadence, and deal cycle times and ageing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from projections.columnar_activity import activities
from projections.columnar_cycle import cycle
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS
from services.api.views import AsOfDep, FiltersDep, question

router = APIRouter(prefix="/v1", tags=["analytics"], responses=READ_PROBLEMS)


@router.get("/activities", response_model=dict[str, Any])
async def get_activities(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                         as_of: AsOfDep) -> Response:
    """Selling effort over the selected activities (`from`/`to` on `occurred_at`) and deals
    (`from`/`to` on creation).

    - `activities`, `by_kind`, and `reps` (each rep's count, total and by kind).
    - `activities_per_deal` = every activity logged on the selected deals (any rep, any time)
      / selected deals.
    - `talk_minutes` / `visit_minutes`: sum of `duration_min` of the selected calls / visits
      (decimal strings; a missing duration adds nothing).
    - `quotes_sent`, `quoted_value`: every `quote.sent` on the selected deals.
    - `cadence`: over selected deals open at `as_of` (created by then, not won or lost by
      then): days from their last activity at or before `as_of` to `as_of`, median and p90,
      and counts in buckets of completed days 0-7, 8-14, 15-30, >30; deals with no activity
      by `as_of` are counted in `never_touched` instead.
    """
    return await services.columns.answer_json(
        tenant, ("activities", as_of, question(selected)),
        lambda columns: activities(columns, selected, as_of))


@router.get("/cycle", response_model=dict[str, Any])
async def get_cycle(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                    as_of: AsOfDep) -> Response:
    """Cycle times of the selected deals (`from`/`to` on creation).

    - `won_days_mean|median|p90`: created → won, in days, over won deals.
    - `stages`: per open stage, the dwell of deals that have left it (all visits summed, as
      in `/v1/funnel`): count, mean, median, p90.
    - `ageing`: deals open at `as_of` (created by then, not won or lost by then), age =
      `as_of` - creation in days: median, p90, buckets of completed days 0-30, 31-60, 61-90,
      >90. Everything else about those deals (stage, owner, dimensions) is today's state.
    """
    return await services.columns.answer_json(tenant, ("cycle", as_of, question(selected)),
                                              lambda columns: cycle(columns, selected, as_of))
