"""Reading leads: intake, validity, conversion and first response, by any dimension or period."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from projections.columnar_leads import leads
from services.api.auth import TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS
from services.api.views import AsOfDep, FiltersDep, question

router = APIRouter(prefix="/v1", tags=["analytics"], responses=READ_PROBLEMS)

LeadGrouping = Literal["rep", "team", "manager", "region", "source", "product", "segment",
                       "day", "week", "month", "quarter", "year"]


@router.get("/leads", response_model=dict[str, Any])
async def get_leads(services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
                    as_of: AsOfDep,
                    by: Annotated[LeadGrouping, Query(description="group by")] = "source",
                    ) -> Response:
    """One row per group of the selected leads (`from`/`to` on creation; periods group by
    creation day, week, month, quarter or year), plus `total` over all of them.

    - `new`: leads. `qualified`: leads whose status is qualified or converted (a lead
      converted without `lead.qualified` counts as qualified). `disqualified`: status
      disqualified. `valid_lead_rate` = qualified / (qualified + disqualified).
    - `converted`, `lead_conversion` = converted / new; `lead_to_deal_days_mean|median`:
      creation → `lead.converted`, in days.
    - First response = the first `activity.logged` on the lead at or before `as_of`, timed
      from the latest of its creation and its `lead.assigned` events at or before that
      activity. `answered`, `first_response_hours_median|p90` over answered leads.
    - `within_sla` = answered within `sla_hours` (setting `LEAD_SLA_HOURS`, default 24) /
      (answered + leads awaiting contact whose SLA ran out by `as_of`). Leads awaiting contact
      but still inside the SLA, and leads disqualified or converted by `as_of` without any
      contact, are left out. `uncontacted`: leads created by `as_of`, not contacted, not
      disqualified or converted by then. Leads created after `as_of` have no response figures.
    """
    sla_hours = services.settings.lead_sla_hours
    return await services.columns.answer_json(
        tenant, ("leads", by, as_of, sla_hours, question(selected)),
        lambda columns: leads(columns, selected, by, as_of, sla_hours))
