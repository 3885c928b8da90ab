"""Exact sums, means and medians of many groups at once: one pass of `np.bincount` over
every value with its group's code, where summing each group's values apart gathered them
again for every group.

`np.bincount` adds float64 weights; integers below 2**53 add exactly, so values are cut
into pieces narrow enough that the sum of all of them stays below 2**53 (one or two
pieces), and the pieces' sums put together as Python integers. Pure: no I/O.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar_table import AMOUNT_SCALE, dense_codes
from projections.columnar_views import as_decimal, decimal_sum, quantile_of

_EXACT_BITS = 53  # a float64 holds integers below 2**53 exactly
_MOST = 1 << 26  # values at most in one pass (pieces of 27 bits or more)
_FRACTION = (1 << 52) - 1  # a float64's stored mantissa bits


def integer_sums(values: NDArray[np.int64], codes: NDArray[np.intp], count: int) -> list[int]:
    """Each group's exact sum of `values` (int64, any sign)."""
    if not values.size:
        return [0] * count
    widest = max(-int(values.min()), int(values.max()))
    # Pieces as wide as a float64 can add `values.size` of exactly: one piece for most.
    width = _EXACT_BITS - values.size.bit_length()
    totals = [0] * count
    shift = 0
    while True:
        last = widest >> shift < 1 << width  # the top piece keeps the sign
        piece = values >> shift if last else (values >> shift) & ((1 << width) - 1)
        if count == 1:  # one group: summed in int64, no conversion
            totals[0] += int(piece.sum()) << shift
        else:
            sums = np.bincount(codes, weights=piece.astype(np.float64), minlength=count)
            for group, found in enumerate(sums.tolist()):
                if found:
                    totals[group] += int(found) << shift
        if last:
            return totals
        shift += width


def least_exponents(exponents: NDArray[np.int8], codes: NDArray[np.intp], sizes: list[int]
                    ) -> list[int]:
    """Each group's least exponent, at most 0 (0 for an empty group): the exponent of a
    `Decimal` sum starting from `Decimal(0)`. `sizes`: how many values each group has."""
    count = len(sizes)
    if not exponents.size:
        return [0] * count
    if exponents.min() == exponents.max():  # one exponent throughout, as usual
        least = min(int(exponents[0]), 0)
        return [least if size else 0 for size in sizes]
    found = np.zeros(count, dtype=np.int64)
    at_most_0 = np.minimum(exponents, 0)
    for exponent in np.flatnonzero(np.bincount(-at_most_0.astype(np.intp))).tolist():
        has = np.bincount(codes[at_most_0 == -exponent], minlength=count) > 0
        found[has] = np.minimum(found[has], -exponent)
    return found.tolist()


def decimal_sums(amounts: NDArray[Any], exponents: NDArray[np.int8], codes: NDArray[np.intp],
                 sizes: list[int]) -> list[Decimal]:
    """Each group's `sum(amounts, Decimal(0))` of amounts in integer millionths (as
    `columnar_orders.scaled` gives them), `sizes` how many each group has."""
    count = len(sizes)
    if amounts.dtype == object or amounts.size >= _MOST:  # beyond int64: group by group
        order = np.argsort(codes, kind="stable")
        parts = np.split(order, np.cumsum(np.bincount(codes, minlength=count))[:-1])
        return [decimal_sum(amounts[part], exponents[part]) for part in parts]
    least = least_exponents(exponents, codes, sizes)
    # An amount of exponent e is a multiple of 10 ** (6 + e) millionths: summed in those
    # units, the values are narrower (cents: one piece).
    unit = 10 ** (AMOUNT_SCALE + min(min(least, default=0), 0))
    totals = integer_sums(amounts // unit if unit > 1 else amounts, codes, count)
    return [as_decimal(total * unit, exponent)
            for total, exponent in zip(totals, least, strict=True)]


def fsum_means(values: NDArray[np.float64], codes: NDArray[np.intp], count: int
               ) -> list[float | None]:
    """Each group's `stats.mean` (`math.fsum` / count) of finite values: a float64 is an
    integer mantissa times a power of two given by its exponent field, so each group's
    mantissas are summed exactly per field and the exact sum rounded once, as `fsum`
    rounds."""
    sizes = np.bincount(codes, minlength=count).tolist()
    if values.size >= _MOST:
        order = np.argsort(codes, kind="stable")
        parts = np.split(values[order], np.cumsum(sizes)[:-1])
        return [math.fsum(part.tolist()) / part.size if part.size else None for part in parts]
    bits = values.view(np.int64)
    field = (bits >> 52) & 0x7FF
    # The implicit leading bit, except for zeros and subnormals (field 0).
    mantissa = (bits & _FRACTION) | ((field != 0).astype(np.int64) << 52)
    if (bits < 0).any():
        mantissa = np.where(bits < 0, -mantissa, mantissa)
    fields, place = dense_codes(field, 1 << 11)  # a count over the fields, not a sort
    # a mantissa counts 2**(field - 1075), a subnormal's 2**-1074
    scales = [max(int(f), 1) - 1 for f in fields.tolist()]
    totals = integer_sums(mantissa, codes * len(scales) + place, count * len(scales))
    means: list[float | None] = []
    for group, size in enumerate(sizes):
        if not size:
            means.append(None)
            continue
        exact = sum(total << scale for total, scale in
                    zip(totals[group * len(scales):(group + 1) * len(scales)], scales,
                        strict=True))
        means.append(exact / (1 << 1074) / size)  # int / int: correctly rounded
    return means


def medians(values: NDArray[np.float64], codes: NDArray[np.intp], count: int
            ) -> list[float | None]:
    """Each group's `quantile_of(values, 0.5)`: the groups' values brought together by a
    radix sort of their codes, then selected group by group."""
    if count <= 1:
        return [quantile_of(values, 0.5)] if count else []
    narrow = np.uint8 if count <= 1 << 8 else np.uint16 if count <= 1 << 16 else np.intp
    order = np.argsort(codes.astype(narrow), kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=count)).tolist()
    grouped = values[order]
    return [quantile_of(grouped[start:end], 0.5)
            for start, end in zip([0, *bounds[:-1]], bounds, strict=True)]
