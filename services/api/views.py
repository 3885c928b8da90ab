"""Reading: the funnel and breakdowns, over exactly the deals the filters select."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError

from events.contract import FIRST_YEAR, LAST_YEAR
from events.vocabulary import Grouping
from projections.columnar_views import breakdown, funnel
from projections.snapshot import Filters
from services.access.principal import Principal
from services.api.auth import PrincipalDep, TenantDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS

router = APIRouter(prefix="/v1", tags=["analytics"], responses=READ_PROBLEMS)
_INCLUSIVE = "a date, inclusive, in the tenant's time zone"
_Day = TypeVar("_Day", date, datetime)


def in_business_years(value: _Day | None, field: str) -> _Day | None:
    """`value`, or a 422 naming `field` when it lies outside the years events may carry
    (beyond them, periods and windows computed from it would not be representable)."""
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise RequestValidationError([{
            "loc": ("query", field), "type": "value_error",
            "msg": f"year {value.year} is outside {FIRST_YEAR}-{LAST_YEAR}"}])
    return value


# What the query parameters take, stated in the OpenAPI document as enforced here: a date or
# a moment (ISO 8601, extended form) in the years events may carry.
IN_BUSINESS_YEARS = r"^(19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}"
_DATE = {"format": "date"}
_MOMENT = {"format": "date-time"}  # or a date, or a time without offset (the description)


def _parsed(value: str | None, field: str, kind: type[_Day]) -> _Day | None:
    """`value` as a date or datetime; a 422 naming `field` when it is none (2017-02-30)."""
    if value is None:
        return None
    try:
        parsed = kind.fromisoformat(value)
    except ValueError:
        raise RequestValidationError([{
            "loc": ("query", field), "type": "value_error",
            "msg": f"not an ISO 8601 {kind.__name__}"}]) from None
    return in_business_years(parsed, field)


FromParam = Annotated[str | None, Query(alias="from", description=_INCLUSIVE,
                                        pattern=IN_BUSINESS_YEARS + "$",
                                        json_schema_extra=_DATE)]
ToParam = Annotated[str | None, Query(alias="to", description=_INCLUSIVE,
                                      pattern=IN_BUSINESS_YEARS + "$", json_schema_extra=_DATE)]


def day(value: str | None, field: str) -> date | None:
    """A `from`/`to` query parameter as a date (`FromParam`, `ToParam`)."""
    return _parsed(value, field, date)


async def unscoped_filters(
    from_: FromParam = None,
    to: ToParam = None,
    rep: str | None = None, team: str | None = None, manager: str | None = None,
    region: str | None = None, source: str | None = None, product: str | None = None,
    segment: str | None = None,
) -> Filters:
    """The filters as asked; only for a route that checks the caller's scope itself."""
    dims = {"rep": rep, "team": team, "manager": manager, "region": region, "source": source,
            "product": product, "segment": segment}
    return Filters(day(from_, "from"), day(to, "to"),
                   {k: v for k, v in dims.items() if v is not None})


UnscopedFiltersDep = Annotated[Filters, Depends(unscoped_filters)]


async def filters(services: ServicesDep, caller: PrincipalDep,
                  asked: UnscopedFiltersDep) -> Filters:
    """The filters asked for, narrowed to the caller's scope: a rep's credential reads only
    their own subjects and a manager's only their team's; asking outside that is 403."""
    return await scoped(services, caller, asked)


async def team_of(services: ServicesDep, caller: Principal) -> list[str]:
    """The reps now in a manager's team (nobody else needs it)."""
    if caller.role != "manager":
        return []
    return await services.columns.team_members(caller.tenant, caller.team_id)


async def scoped(services: ServicesDep, caller: Principal, asked: Filters) -> Filters:
    return caller.scope(asked, await team_of(services, caller))


FiltersDep = Annotated[Filters, Depends(filters)]


async def as_of(services: ServicesDep, asked: Annotated[str | None, Query(
        alias="as_of", pattern=IN_BUSINESS_YEARS, json_schema_extra=_MOMENT,
        description="the moment the answer is for (ISO 8601; without an offset, in the "
                    "tenant's time zone); default now, floored to AS_OF_STEP_SECONDS (5 s) "
                    "so that dashboards asking alike share one answer. Ageing, pace, "
                    "forecast and recency are measured at this moment, over the events "
                    "that occurred by then")
        ] = None) -> datetime:
    as_of = _parsed(asked, "as_of", datetime)
    if as_of is None:
        return stepped_now(services.settings.as_of_step_seconds)
    if as_of.tzinfo is None:
        return as_of.replace(tzinfo=ZoneInfo(services.settings.tenant_timezone))
    return as_of


AsOfDep = Annotated[datetime, Depends(as_of)]


def stepped_now(step: float) -> datetime:
    """Now, floored to a multiple of `step` seconds since the epoch (0: now exactly)."""
    now = datetime.now(UTC)
    if step <= 0:
        return now
    return datetime.fromtimestamp(now.timestamp() // step * step, UTC)


@router.get("/funnel", response_model=dict[str, Any])
async def get_funnel(services: ServicesDep, tenant: TenantDep,
                     selected: FiltersDep) -> Response:
    """Per open stage: open deals and amount, entered, advanced, conversion, dwell (see
    docs/METRICS.md); and won, lost, won value, win rate; `loss_reasons` (lost deals per
    reason, none = "unspecified"), `competitors` (lost deals per named competitor),
    `stage_skips` (moves forward over at least one stage) and `regressions` (moves back)."""
    return await services.columns.answer_json(tenant, ("funnel", question(selected)),
                                              lambda columns: funnel(columns, selected))


@router.get("/breakdown", response_model=dict[str, Any])
async def get_breakdown(
    services: ServicesDep, tenant: TenantDep, selected: FiltersDep,
    by: Grouping,
) -> Response:
    """One row per group; month/quarter group deals by close time (open ones by creation)."""
    return await services.columns.answer_json(tenant, ("breakdown", by, question(selected)),
                                              lambda columns: breakdown(columns, selected, by))


def question(selected: Filters) -> tuple[object, ...]:
    """The filters as part of a cached answer's key."""
    return (selected.start, selected.end, tuple(sorted(selected.dims.items())))
