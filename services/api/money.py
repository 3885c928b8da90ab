"""Reading revenue and customers: thin adapters over `projections.columnar_revenue` and
`projections.columnar_customers` (definitions in docs/METRICS.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from projections.columnar_customers import customers, rfm_list
from projections.columnar_revenue import revenue
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS
from services.api.views import AsOfDep, FiltersDep, question

router = APIRouter(prefix="/v1", tags=["revenue and customers"], responses=READ_PROBLEMS)

Period = Literal["day", "week", "month", "quarter", "year"]
RevenueGrouping = Literal["day", "week", "month", "quarter", "year", "rep", "team", "manager",
                          "region", "source", "product", "segment"]
RfmSegment = Literal["champions", "new", "loyal", "potential", "at_risk", "hibernating",
                     "needs_attention"]


@router.get("/revenue", response_model=dict[str, Any])
async def get_revenue(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                      as_of: AsOfDep, by: RevenueGrouping = "month") -> Response:
    """Booked, collected, outstanding, aging, DSO and collection cycle per group (`rows`),
    per product (`products`) and in `total`. Only events at or before `as_of` count.

    - `booked`, `orders`, `avg_order_value` (half-even, cents): orders matching the filters,
      `from`/`to` and periods on their booking time. `collected`: payments of orders matching
      the dimension filters, `from`/`to` and periods on the payment's own time.
    - Balances, at as_of (period rows: at the period's end if that is earlier), over every
      order matching the dimension filters booked by then, whatever `from`/`to`:
      `outstanding` = amounts minus payments; `aging` splits it by completed days since
      booking (`0-30`, `31-60`, `61-90`, `>90`); `dso` = outstanding / booked in the 90 days
      up to that moment x 90 (null when nothing was booked).
    - `collection_days_mean`/`_median`: booking to the payment completing the order, over
      the group's booked orders fully paid by as_of (`collection_orders` of them).
    """
    return await services.columns.answer_json(tenant, ("revenue", by, as_of, question(selected)),
                                              lambda columns: revenue(columns, selected, by, as_of))


@router.get("/customers", response_model=dict[str, Any])
async def get_customers(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                        as_of: AsOfDep, by: Period = "month") -> Response:
    """Customers seen through their orders matching the dimension filters, booked by as_of.

    - `customers`: with at least one such order; `active`: last order in the 90 days up to
      as_of; `repeat_rate` = customers with >= 2 orders / customers.
    - `lifetime_value`: booked and collected (payments by as_of) per customer: total, mean
      (half-even, cents), median (exact).
    - `from`/`to` select by the first order's date: `new`, `new_by_period` (periods `by`),
      and `retention`: cohort = month of the first order; `rates[k]` = share of the cohort
      with an order in the k-th month after it (k = 0 to as_of's month).
    - `rfm_segments`: customers per RFM segment (see `GET /v1/customers/rfm`).
    """
    return await services.columns.answer_json(
        tenant, ("customers", by, as_of, question(selected)),
        lambda columns: customers(columns, selected, as_of, by))


@router.get("/customers/rfm", response_model=dict[str, Any])
async def get_customers_rfm(
    services: ServicesDep, tenant: TenantDep, selected: FiltersDep, as_of: AsOfDep,
    rfm_segment: RfmSegment | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Each customer's recency, frequency, monetary value, their 1-5 scores and segment, by
    customer id, paged; `total` counts the matches.

    Scores rank all selected customers: R by the last order's time (later = higher), F by
    order count, M by booked sum; ties share their average rank r (1-based, n customers);
    score = ceil(5 r / n). Segment = the first that matches: `champions` R,F,M >= 4;
    `new` R >= 4 with one order; `loyal` R >= 3, F >= 3; `potential` R >= 4; `at_risk`
    R <= 2, F >= 3; `hibernating` R <= 2; else `needs_attention`. `rfm_segment` narrows
    the list after scoring.
    """
    return await services.columns.answer_json(
        tenant, ("customers/rfm", limit, offset, rfm_segment, as_of, question(selected)),
        lambda columns: rfm_list(columns, selected, as_of, limit=limit, offset=offset,
                                 segment=rfm_segment))
