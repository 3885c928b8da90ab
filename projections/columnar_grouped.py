"""Exact sums, means and medians of many groups at once: one pass of `np.bincount` over
every value with its group's code, where summing each group's values apart gathered them
again for every group.

`np.bincount` adds float64 weights; integers below 2**53 add exactly, so values are cut
into pieces of at most 26 bits (a sum of fewer than 2**27 such pieces stays exact) and
the pieces' sums put together as Python integers. Pure: no I/O.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar_table import dense_codes
from projections.columnar_views import as_decimal, decimal_sum, quantile_of

_PIECE = 26
_MOST = 1 << (2 * _PIECE + 1)  # below this many values, piece sums stay below 2**53
_FRACTION = (1 << 52) - 1  # a float64's stored mantissa bits


def integer_sums(values: NDArray[np.int64], codes: NDArray[np.intp], count: int) -> list[int]:
    """Each group's exact sum of `values` (int64, any sign)."""
    if not values.size:
        return [0] * count
    widest = max(-int(values.min()), int(values.max()))
    totals = [0] * count
    shift = 0
    while True:
        last = widest >> shift < 1 << _PIECE  # the top piece keeps the sign
        piece = values >> shift if last else (values >> shift) & ((1 << _PIECE) - 1)
        sums = np.bincount(codes, weights=piece.astype(np.float64), minlength=count)
        for group, found in enumerate(sums.tolist()):
            if found:
                totals[group] += int(found) << shift
        if last:
            return totals
        shift += _PIECE


def least_exponents(exponents: NDArray[np.int8], codes: NDArray[np.intp], count: int
                    ) -> list[int]:
    """Each group's least exponent, at most 0 (0 for an empty group): the exponent of a
    `Decimal` sum starting from `Decimal(0)`."""
    least = np.zeros(count, dtype=np.int64)
    if not exponents.size:
        return least.tolist()
    at_most_0 = np.minimum(exponents, 0)
    present = np.flatnonzero(np.bincount(-at_most_0.astype(np.intp)))
    for exponent in present.tolist():
        # one exponent throughout (as usual): every group that has a value has it
        of_it = codes if present.size == 1 else codes[at_most_0 == -exponent]
        has = np.bincount(of_it, minlength=count) > 0
        least[has] = np.minimum(least[has], -exponent)
    return least.tolist()


def decimal_sums(amounts: NDArray[Any], exponents: NDArray[np.int8], codes: NDArray[np.intp],
                 count: int) -> list[Decimal]:
    """Each group's `sum(amounts, Decimal(0))` of amounts in integer millionths."""
    if amounts.dtype == object or amounts.size >= _MOST:  # beyond int64: group by group
        order = np.argsort(codes, kind="stable")
        parts = np.split(order, np.cumsum(np.bincount(codes, minlength=count))[:-1])
        return [decimal_sum(amounts[part], exponents[part]) for part in parts]
    totals = integer_sums(amounts, codes, count)
    least = least_exponents(exponents, codes, count)
    return [as_decimal(total, exponent) for total, exponent in zip(totals, least, strict=True)]


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
    if not count:
        return []
    narrow = np.uint8 if count <= 1 << 8 else np.uint16 if count <= 1 << 16 else np.intp
    order = np.argsort(codes.astype(narrow), kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=count)).tolist()
    grouped = values[order]
    return [quantile_of(grouped[start:end], 0.5)
            for start, end in zip([0, *bounds[:-1]], bounds, strict=True)]
