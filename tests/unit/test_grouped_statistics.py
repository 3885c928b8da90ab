"""Quantiles and means of many groups in one pass (`columnar_views.quantiles_by_group`,
`means_by_group`) give, byte for byte, what `quantile_of` and `mean_of` give group by group:
with ties, negatives, zeros, one value, empty groups, and sums `math.fsum` must round; and
the count of values at most a threshold is the count of a comparison."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from projections.columnar_views import mean_of, means_by_group, quantile_of, quantiles_by_group


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
