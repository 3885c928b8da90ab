"""Reading the forecast: expected won value of the open pipeline, and how good it was."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from projections.columnar_forecast import StageHistory, accuracy, forecast
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS
from services.api.views import AsOfDep, FiltersDep, question

router = APIRouter(prefix="/v1", tags=["forecast"], responses=READ_PROBLEMS)


@router.get("/forecast", response_model=dict[str, Any])
async def get_forecast(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                       as_of: AsOfDep) -> Response:
    """Expected won value in the next 30 and 90 days after `as_of`, from events that
    occurred by `as_of` only (so any past forecast is reproduced exactly).

    - Deals: those open at `as_of` (created, not yet won or lost by then), in their stage,
      amount, owner and expected close at `as_of`; filters on their dimensions at `as_of`
      (rep = owner then, team/manager/region = `rep_at(owner, as_of)`) and `from`/`to` on
      creation.
    - Probability of winning from stage S: of the tenant's deals (all, filters aside) closed
      by `as_of` whose stage history contains S, the share won (`history`) when there are at
      least `min_history` (20) of them; else the pipeline's configured
      `win_probabilities[S]` (`configured`); else (i + 1) / (n + 1) for the i-th (0-based)
      of n open stages (`default`).
    - Window of h days (30, 90): deals whose expected close date is on or before
      `until` = as_of's local date + h − 1; a date already past counts as due now. The
      expected close date is the deal's `expected_close` at `as_of` when it parses as a
      date, else `as_of` + the median days from first entering its stage to the win among
      deals won by `as_of` that passed the stage; with neither, the deal is in no window
      (`undated_deals`).
    - Per stage: `deals`, `amount`, `probability`, `probability_source`, `history_closed`,
      `history_won`, `weighted_value` = amount × probability rounded half-even to cents;
      window totals add up the stage rows.
    """
    # The stage odds come from every deal's stage history, whatever the filters: that
    # history is made once per place, and keeps each stage's figures once found.
    return await services.columns.answer_json(
        tenant, ("forecast", as_of, question(selected)),
        lambda columns, history: forecast(columns, selected, as_of, history),
        given=(("stage history",), StageHistory))


@router.get("/forecast/accuracy", response_model=dict[str, Any])
async def get_forecast_accuracy(
    services: ServicesDep, tenant: TenantDep, selected: FiltersDep, as_of: AsOfDep,
    period: Annotated[Literal["month", "quarter"], Query(description="calendar period")
                      ] = "month",
) -> Response:
    """The forecast made at each closed period's start against what was won in it.

    Periods are calendar months or quarters in the tenant's zone, from the one in which the
    tenant's first deal was created to the last one ended by `as_of`. For each:
    `forecast` = the forecast as of the period's first instant (as `GET /v1/forecast`) for
    deals expected to close by the period's last day (its window is the period);
    `actual` = the amounts at the win of the selected deals won in the period (their
    dimensions at the win); `actual_from_open_deals` = the part won by deals that were open
    at the start; `error` = forecast − actual; `ape` = |error| / actual (null when nothing
    was won). `mape` = the mean of the non-null `ape`s.
    """
    # Each period's forecast reads the same stage history as `GET /v1/forecast`'s.
    return await services.columns.answer_json(
        tenant, ("forecast/accuracy", period, as_of, question(selected)),
        lambda columns, history: accuracy(columns, selected, as_of, period, history),
        given=(("stage history",), StageHistory))
