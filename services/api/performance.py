"""Reading targets, the leaderboard and a rep's page (definitions: docs/METRICS.md,
"Targets" and "Score and leaderboard")."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from events.contract import PERIOD_PATTERN
from events.vocabulary import TargetMetric
from projections.columnar import Columns
from projections.columnar_scores import leaderboard, rep_page_or_none
from projections.columnar_targets import column_targets
from projections.scores import Window
from projections.snapshot import Filters
from projections.targets import Period
from services.access.principal import Forbidden
from services.api.auth import PrincipalDep
from services.api.deps import ServicesDep
from services.api.problems import READ_PROBLEMS, problem, problem_responses
from services.api.views import (
    AsOfDep,
    FromParam,
    ToParam,
    UnscopedFiltersDep,
    day,
    question,
    scoped,
)

router = APIRouter(prefix="/v1", tags=["performance"], responses=READ_PROBLEMS)
PeriodParam = Annotated[str | None, Query(
    pattern=PERIOD_PATTERN, description="a year `2017`, quarter `2017-Q1` or month `2017-03`, "
    "in the tenant's time zone")]


async def _window(services: ServicesDep, as_of: AsOfDep,
                  from_text: FromParam = None, to_text: ToParam = None,
                  period: PeriodParam = None) -> Window:
    """The time window a score is over: `period`, or `from`/`to` as local dates."""
    tz = ZoneInfo(services.settings.tenant_timezone)
    from_, to = day(from_text, "from"), day(to_text, "to")
    if period is not None:
        if from_ or to:
            raise RequestValidationError([{"loc": ("query", "period"), "type": "value_error",
                                           "msg": "give either period or from/to, not both"}])
        span = Period.parse(period, tz)
        return Window(span.start, span.end, as_of)

    def midnight(day: date | None) -> datetime | None:
        return None if day is None else datetime(day.year, day.month, day.day, tzinfo=tz)
    return Window(midnight(from_), midnight(to + timedelta(days=1)) if to else None, as_of)


WindowDep = Annotated[Window, Depends(_window)]


@router.get("/targets", response_model=dict[str, Any])
async def get_targets(
    services: ServicesDep, caller: PrincipalDep, as_of: AsOfDep,
    scope: Literal["company", "team", "rep"] | None = None,
    period: Annotated[str | None, Query(
        pattern=PERIOD_PATTERN, description="keep targets whose period lies within this one "
        "(`2017` keeps the year, its quarters and its months)")] = None,
    metric: TargetMetric | None = None,
    team: Annotated[str | None, Query(description="the team's targets and those of the reps "
                                      "in it at the period's start")] = None,
    rep: str | None = None,
    standing: Annotated[Literal["not_begun", "under_way", "over"] | None, Query(
        description="keep targets whose period stands so at `as_of`: not begun, under way "
        "(begun, not ended) or over")] = None,
) -> Response:
    """Each target (`target.set`, latest value per scope, scope_id, period and metric) with:

    - `actual`: the metric over the period (tenant's time zone), counting only what occurred
      by `as_of`. won_value / won_deals: deals won in the period (by `closed_at`), rep = the
      deal's owner, team = the owner's team at the close. new_leads: leads by `created_at`,
      rep = the lead's owner, team at creation. activities: by `occurred_at`, the logging rep
      and their team then. collected: payments received in the period, rep = the order's
      deal's owner, team = that rep's team at booking. Company = everything.
    - `attainment` = actual / target; `elapsed_share` = the share of the period's real time
      before `as_of`; `expected_at_as_of` = target x elapsed_share;
      `pace` = actual / elapsed_share (null before the period starts, = actual after it
      ends); `pace_attainment` = pace / target; `on_pace` = actual >= expected_at_as_of.
    - Roll-ups (`derived: true`): a team with no target of its own for (period, metric)
      gets the sum of the targets of the reps in it at the period's start; the company,
      the sum over teams (set or derived).

    Amounts (won_value, collected) are decimal strings; pace and expected amounts are rounded
    half-even to cents.
    """
    if caller.role == "rep" and scope not in (None, "rep"):
        raise Forbidden("scope", "a rep's credential reads its own rep targets only")
    if caller.role == "manager" and scope == "company":
        raise Forbidden("scope", "a manager's credential reads its team's targets only")
    within = (await scoped(services, caller, Filters(dims={k: v for k, v in (
        ("team", team), ("rep", rep)) if v is not None}))).dims
    if caller.role == "rep":
        scope = "rep"
    asked = {"scope": scope, "period": period, "metric": metric, "team": within.get("team"),
             "rep": within.get("rep"), "standing": standing}
    return await services.columns.answer_json(
        caller.tenant, ("targets", as_of, tuple(asked.items())),
        lambda columns: column_targets(columns, as_of, **asked))


@router.get("/leaderboard", response_model=dict[str, Any])
async def get_leaderboard(
    services: ServicesDep, caller: PrincipalDep, window: WindowDep,
    team: str | None = None, manager: str | None = None, region: str | None = None,
    rep: str | None = None,
) -> Response:
    """Reps ranked by score (0-100) over a window: `period`, or `from`/`to` (dates,
    inclusive; default: all history), counting only what occurred by `as_of`.

    - results = 100 x the rep's won value (deals won in the window, owner's) / the best
      rep's.
    - process = mean of 100 x activities logged / the best rep's, and 100 x follow-up rate
      (share of the rep's deals open at the window's close with an activity in the 14 days
      before it; left out when the rep has no open deal).
    - customer = mean of 100 x collected (payments in the window on orders of the rep's
      deals) / the best rep's, and 100 x repeat rate (share of the customers of deals the
      rep won in the window that have booked two or more orders by the close; left out when
      none).
    - score = weighted mean of the three (default 60/30/10, `PUT /v1/scoring`).
    - rank_company, rank_team: 1 = highest score, ties share a rank; team = the rep's team at
      the window's close (its end, or `as_of` if earlier). Each row carries its team's
      average score and components. Scores are computed over every rep; `team`, `manager`,
      `region`, `rep` only choose the rows shown.
    """
    asked = {k: v for k, v in (("team", team), ("manager", manager), ("region", region),
                               ("rep", rep)) if v is not None}
    select = (await scoped(services, caller, Filters(dims=asked))).dims
    # Every selection shows rows of the same board, computed once per window (a past
    # window's once for every later as_of); each selection's rows are picked from it (and
    # made JSON) once per place.
    return await services.columns.answer_json(
        caller.tenant, ("leaderboard", window, tuple(sorted(select.items()))),
        lambda _columns, whole: {**whole, "as_of": window.as_of.isoformat(), "rows": [
            row for row in whole["rows"] if all(row[k] == v for k, v in select.items())]},
        given=_board(window))


def _board(window: Window) -> tuple[Hashable, Callable[[Columns], dict[str, Any]]]:
    """The whole board over the window, as a question its selections and rep pages share."""
    judged = window.settled()
    return ("leaderboard", judged), lambda columns: leaderboard(columns, judged)


@router.get("/reps/{rep_id}", response_model=None, responses=problem_responses(404))
async def get_rep(rep_id: str, services: ServicesDep, caller: PrincipalDep,
                  selected: UnscopedFiltersDep, window: WindowDep
                  ) -> dict[str, Any] | JSONResponse:
    """One rep: `figures` = their `GET /v1/breakdown?by=rep` row over the filters (deals by
    creation, leads by creation, activities by time; `period` sets from/to);
    `team_average` = each figure averaged over the reps in their team at the window's close
    (rates over reps that have one); `activities_by_kind`, `activities_by_day` (local
    dates); `score`, `components`, `rank_team`, `rank_company`, `team_average_score` as in
    `GET /v1/leaderboard` over the same window at `as_of`.

    A manager reads the page of a rep who was in their team at the window's close (the
    moment the page describes), its figures narrowed to what the team owned; a rep reads
    their own."""
    selected = await scoped(services, caller, selected)
    filters = replace(selected, start=window.start.date() if window.start else None,
                      end=(window.end - timedelta(days=1)).date() if window.end else None)
    page = await services.columns.answer_from(
        caller.tenant, ("rep", rep_id, window, question(filters)),
        _board(window),
        lambda columns, board: rep_page_or_none(columns, filters, window, rep_id,
                                                board["rows"]))
    # The rep's team at the close, not now: a window closing before a move describes the
    # rep in their old team, whose manager alone may read it (docs/SECURITY.md).
    closing = page["team"] if page is not None else None
    if not caller.may_read_rep(rep_id, closing):
        raise Forbidden("rep_id", f"this credential may not read rep {rep_id!r}")
    if page is None:
        return problem(404, "unknown-rep", "Unknown rep",
                       f"no rep.joined names rep {rep_id!r}")
    return page
