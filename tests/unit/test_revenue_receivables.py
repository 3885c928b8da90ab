"""The revenue view's receivables read off slices (`columnar_receivables`) give the
`Snapshot` view's balances byte for byte, whichever run an order falls in (paid within a
few weeks, slowly, partly or never) and whatever exponents its amounts carry; and
`exact_mean` is `math.fsum` / count."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
from fastapi.responses import JSONResponse

from projections import columnar_revenue
from projections.columnar_receivables import exact_mean
from projections.revenue import revenue
from projections.snapshot import Filters
from tests.history import columns_of, snapshot_of
from tests.unit.test_revenue import base, order, pay


def test_exact_mean_is_the_fsum_mean_of_any_finite_floats() -> None:
    rng = np.random.default_rng(24)
    cases = [np.array([1e16, 1.0, -1e16, 3.0, 2.0 ** -1074, 5e-324, -0.0, 0.0]),
             rng.integers(0, 10 ** 14, 1000).astype(np.float64) / 1e6 / 86400,
             rng.normal(0, 1, 1000) * 10.0 ** rng.integers(-20, 20, 1000),
             rng.uniform(-1, 1, 1000) * 2.0 ** rng.integers(-1074, 1000, 1000)]
    for values in cases:
        for size in (1, 2, 7, values.size):
            assert exact_mean(values[:size]) == math.fsum(values[:size].tolist()) / size
    assert exact_mean(np.zeros(0)) is None


def test_orders_paid_fast_slowly_partly_or_never_owe_as_the_snapshot_says() -> None:
    events = [*base(deal=True),
              order("O1", "2017-01-05T10:00:00", "100.5", deal_id="D1"),
              order("O2", "2017-01-06T10:00:00", "10.50"),
              order("O3", "2017-01-07T10:00:00", "7"),
              order("O4", "2017-02-01T00:00:00", "0"),
              order("O5", "2017-03-01T10:00:00", "3.125", deal_id="D1"),
              pay("O1", "2017-02-10T10:00:00", "50.5"),
              pay("O2", "2017-01-20T10:00:00", "10.5"),
              pay("O1", "2017-01-10T10:00:00", "50"),  # recorded after a later one
              pay("O3", "2017-09-10T10:00:00", "7.00"),  # paid after eight months
              pay("O5", "2017-03-02T10:00:00", "1")]  # never paid in full
    snapshot, columns = snapshot_of(events), columns_of(events)
    for by in ("month", "day", "product", "rep"):
        for as_of in ("2017-01-10T10:00:00+08:00", "2017-02-28T23:59:59.999999+08:00",
                      "2017-03-01T00:00:00+08:00", "2017-12-31T18:00:00+08:00"):
            moment = datetime.fromisoformat(as_of)
            for selected in (Filters(), Filters(date(2017, 1, 6), None),
                             Filters(dims={"rep": "r1"}), Filters(dims={"product": "crm"})):
                assert JSONResponse(columnar_revenue.revenue(columns, selected, by, moment)
                                    ).body == JSONResponse(revenue(snapshot, selected, by,
                                                                   moment)).body
