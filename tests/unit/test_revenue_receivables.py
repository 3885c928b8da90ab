"""The revenue view's receivables read off slices (`columnar_receivables`) give the
`Snapshot` view's balances byte for byte, whichever run an order falls in (paid within a
few weeks, slowly, partly or never) and whatever exponents its amounts carry; and
the grouped sums, means (`math.fsum` / count) and medians are each group's own."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
from fastapi.responses import JSONResponse

from projections import columnar_revenue
from projections.columnar_grouped import decimal_sums, fsum_means, integer_sums, medians
from projections.columnar_views import decimal_sum, quantile_of
from projections.revenue import revenue
from projections.snapshot import Filters
from tests.history import columns_of, snapshot_of
from tests.unit.test_revenue import base, order, pay


def test_the_mean_is_the_fsum_mean_of_any_finite_floats() -> None:
    rng = np.random.default_rng(24)
    cases = [np.array([1e16, 1.0, -1e16, 3.0, 2.0 ** -1074, 5e-324, -0.0, 0.0]),
             rng.integers(0, 10 ** 14, 1000).astype(np.float64) / 1e6 / 86400,
             rng.normal(0, 1, 1000) * 10.0 ** rng.integers(-20, 20, 1000),
             rng.uniform(-1, 1, 1000) * 2.0 ** rng.integers(-1074, 1000, 1000)]
    for values in cases:
        for size in (1, 2, 7, values.size):
            assert fsum_means(values[:size], np.zeros(size, dtype=np.intp), 1) == \
                [math.fsum(values[:size].tolist()) / size]
    assert fsum_means(np.zeros(0), np.zeros(0, dtype=np.intp), 1) == [None]


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


def test_grouped_sums_means_and_medians_are_each_groups_own() -> None:
    rng = np.random.default_rng(7)
    count = 5
    codes = rng.integers(0, count - 1, 3000).astype(np.intp)  # the last group stays empty
    wide = rng.integers(-(2 ** 63), 2 ** 63 - 1, codes.size)
    # each group its own exponents: some only above 0, some down to -6
    exponents = (rng.integers(-6, 3, codes.size) * (codes % 2) + codes).astype(np.int8)
    # as `columnar_orders.scaled` stores them: a multiple of 10 ** (6 + exponent)
    amounts = rng.integers(-(2 ** 40), 2 ** 40, codes.size) \
        * 10 ** (6 + np.minimum(exponents, 0).astype(np.int64))
    floats = rng.uniform(-1, 1, codes.size) * 2.0 ** rng.integers(-1074, 900, codes.size)
    cycles = rng.integers(0, 10 ** 14, codes.size).astype(np.float64) / 1e6 / 86400
    sums = decimal_sums(amounts, exponents, codes, np.bincount(codes, minlength=count).tolist())
    means = fsum_means(floats, codes, count)
    middles = medians(cycles, codes, count)
    for group in range(count):
        mine = codes == group
        assert integer_sums(wide, codes, count)[group] == sum(wide[mine].tolist())
        assert str(sums[group]) == str(decimal_sum(amounts[mine], exponents[mine]))
        assert means[group] == (math.fsum(floats[mine].tolist()) / mine.sum()
                                if mine.any() else None)
        assert middles[group] == quantile_of(cycles[mine], 0.5)
