"""What API replicas share through Redis: every view's answer goes there and comes back
the same, and nothing but plain data goes either way."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np
import pytest
from fastapi.responses import JSONResponse

from projections import (
    columnar_activity,
    columnar_customers,
    columnar_cycle,
    columnar_dimensions,
    columnar_forecast,
    columnar_leads,
    columnar_revenue,
    columnar_scores,
    columnar_targets,
    columnar_views,
)
from projections.columnar import Columns
from projections.scores import Window
from projections.snapshot import Filters
from services.api.shared_answers import NotShareable, dumps, loads
from tests.history import TZ, columns_from, fold, simulated

AS_OF = datetime.fromisoformat("2017-06-30T18:00:00+08:00")
WINDOW = Window(datetime.fromisoformat("2017-04-01T00:00:00+08:00"),
                datetime.fromisoformat("2017-07-01T00:00:00+08:00"), AS_OF)
TEAM = Filters(dims={"team": "T-2"})


@cache
def columns() -> Columns:
    return columns_from(fold(simulated(days=180)), TZ)


def views(c: Columns) -> dict[str, Callable[[], Any]]:
    """Each view as the API's routes ask it (services/api): the answers they keep."""
    rep = min(c.rep_records, default="R-001")
    return {
        "funnel": lambda: columnar_views.funnel(c, TEAM),
        "breakdown": lambda: columnar_views.breakdown(c, Filters(), "rep"),
        "dimensions": lambda: columnar_dimensions.dimensions(c),
        "cycle": lambda: columnar_cycle.cycle(c, TEAM, AS_OF),
        "forecast": lambda: columnar_forecast.forecast(c, Filters(), AS_OF),
        "accuracy": lambda: columnar_forecast.accuracy(c, Filters(), AS_OF, "month"),
        "revenue": lambda: columnar_revenue.revenue(c, Filters(), "month", AS_OF),
        "customers": lambda: columnar_customers.customers(c, Filters(), AS_OF),
        "rfm": lambda: columnar_customers.rfm_list(c, Filters(), AS_OF, limit=20, offset=0),
        "leads": lambda: columnar_leads.leads(c, TEAM, "month", AS_OF),
        "activities": lambda: columnar_activity.activities(c, Filters(), AS_OF),
        "targets": lambda: columnar_targets.column_targets(c, AS_OF),
        "leaderboard": lambda: columnar_scores.leaderboard(c, WINDOW),
        "rep page": lambda: columnar_scores.rep_page_or_none(c, Filters(), WINDOW, rep),
        "unknown rep": lambda: columnar_scores.rep_page_or_none(c, Filters(), WINDOW, "R-?"),
    }


@pytest.mark.parametrize("view", list(views(Columns(TZ))))
def test_every_view_answer_comes_back_byte_for_byte(view: str) -> None:
    answer = views(columns())[view]()
    back = loads(dumps(answer))
    assert back == answer
    assert JSONResponse(back).body == JSONResponse(answer).body


def test_what_is_not_plain_data_is_not_shared() -> None:
    for held in (np.float64(1.5), object(), Columns(TZ)):
        with pytest.raises(NotShareable):
            dumps({"rows": [held]})


class _Runs:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.getpid, ())


def test_bytes_naming_any_other_callable_are_refused() -> None:
    # Whoever can write to Redis must not get the API to call anything.
    for foreign in (pickle.dumps(_Runs()), pickle.dumps(np.float64(1.5))):
        with pytest.raises(pickle.UnpicklingError, match="is not an answer's type"):
            loads(foreign)
