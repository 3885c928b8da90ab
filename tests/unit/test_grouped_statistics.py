"""Quantiles and means of many groups in one pass (`columnar_views.quantiles_by_group`,
`means_by_group`) give, byte for byte, what `quantile_of` and `mean_of` give group by group:
with ties, negatives, zeros, one value, empty groups, and sums `math.fsum` must round; and
the count of values at most a threshold is the count of a comparison. `mean_of` and
`quantiles_of` over many values give what `stats.mean` and `stats.quantile` give."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from projections.columnar_views import (
    mean_of,
    means_by_group,
    quantile_of,
    quantiles_by_group,
    quantiles_of,
)
from projections.stats import mean, quantile


def one_by_one(values: np.ndarray, groups: np.ndarray, count: int,
               qs: tuple[float, ...], at_most: float) -> bytes:
    return orjson.dumps((
        [[quantile_of(values[groups == g], q) for q in qs] for g in range(count)],
        [quantile_of(values, q) for q in qs],
        [int((values[groups == g] <= at_most).sum()) for g in range(count)],
        [mean_of(values[groups == g]) for g in range(count)],
        mean_of(values)))


def together(values: np.ndarray, groups: np.ndarray, count: int,
             qs: tuple[float, ...], at_most: float) -> bytes:
    per_group, whole, below = quantiles_by_group(values, groups, count, qs, at_most)
    means, mean = means_by_group(values, groups, count)
    return orjson.dumps((per_group, whole, below, means, mean))


def drawn(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "hours":  # whole microseconds as hours, the way the leads view makes them
        return rng.integers(0, 10**12, size).astype(np.float64) / 1e6 / 3600
    if kind == "ties":
        return rng.integers(0, 4, size).astype(np.float64)
    if kind == "signed":
        return rng.normal(0, 1e3, size)
    if kind == "wide":  # exponents far apart: buckets beyond the sampled range
        return rng.standard_cauchy(size) * 10.0 ** rng.integers(-300, 300, size)
    return np.round(rng.lognormal(1, 2, size), 2)


@pytest.mark.parametrize("kind", ["hours", "ties", "signed", "wide", "rounded"])
@pytest.mark.parametrize("size", [0, 1, 2, 3, 50, 5000])
def test_groups_together_give_each_group_alone(kind: str, size: int) -> None:
    rng = np.random.default_rng(size)
    for count in (1, 3, 40):
        values = drawn(kind, size, rng)
        groups = rng.integers(0, count, size).astype(np.intp)
        for qs, at_most in (((0.5,), 24.0), ((0.5, 0.9), 0.0), ((0.0, 0.25, 1.0), -1e9),
                            ((0.9,), float(np.median(values)) if size else 1.0)):
            assert together(values, groups, count, qs, at_most) == \
                one_by_one(values, groups, count, qs, at_most)


def test_means_are_the_exactly_rounded_sums() -> None:
    cases = [[1e16, 1.0, -1e16], [0.1] * 1000, [5e-324, 1e-310, -2e-320],
             [2.0**53, 1.0, 1.0 / 2**10], [1.0, 2.0**-53, 2.0**-105], [1e308, -1e308, 1e-308]]
    for case in cases:
        values = np.array(case)
        groups = np.arange(len(case), dtype=np.intp) % 2
        assert together(values, groups, 2, (0.5,), 1.0) == \
            one_by_one(values, groups, 2, (0.5,), 1.0)


@pytest.mark.parametrize("kind", ["hours", "ties", "signed", "rounded", "tiny"])
def test_a_mean_of_many_values_is_the_fsum_mean_of_those_not_nan(kind: str) -> None:
    rng = np.random.default_rng(11)
    for size in (4095, 4096, 30_000):  # either side of where the exact sum takes over
        values = rng.uniform(-1, 1, size) * 1e-310 if kind == "tiny" else drawn(kind, size, rng)
        values[::97] = np.nan
        present = [v for v in values.tolist() if not math.isnan(v)]
        assert mean_of(values) == mean(present)


def test_a_mean_of_many_values_with_an_infinity_is_the_fsum_mean() -> None:
    values = np.full(5000, 2.5)
    values[7] = math.inf
    assert mean_of(values) == mean(values.tolist()) == math.inf


@pytest.mark.parametrize("size", [0, 1, 2, 3, 10, 4999])
def test_quantiles_from_one_partition_are_each_quantile(size: int) -> None:
    rng = np.random.default_rng(size)
    values = drawn("ties", size, rng) + drawn("rounded", size, rng)
    values[::5] = np.nan
    qs = (0.5, 0.9, 0.0, 1.0, 0.25)
    present = [v for v in values.tolist() if not math.isnan(v)]
    assert quantiles_of(values, qs) == [quantile(present, q) for q in qs]
