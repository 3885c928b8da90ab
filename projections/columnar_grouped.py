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
from projections.columnar_views import as_decimal, decimal_sum

_EXACT_BITS = 53  # a float64 holds integers below 2**53 exactly
_MOST = 1 << 26  # values at most in one pass (pieces of 27 bits or more)
_FRACTION = (1 << 52) - 1  # a float64's stored mantissa bits


class IntegerSums:
    """Exact sums of int64 values (any sign) by any grouping: the values cut into pieces
    once, as wide as float64 can add all of them exactly (one piece for most), then one
    `np.bincount` per piece and grouping."""

    def __init__(self, values: NDArray[np.int64]) -> None:
        self.size = values.size
        self.pieces: list[tuple[int, NDArray[np.float64]]] = []  # (shift, piece)
        if not values.size:
            return
        widest = max(-int(values.min()), int(values.max()))
        width = _EXACT_BITS - values.size.bit_length()
        shift = 0
        while True:
            last = widest >> shift < 1 << width  # the top piece keeps the sign
            piece = values >> shift if last else (values >> shift) & ((1 << width) - 1)
            self.pieces.append((shift, piece.astype(np.float64)))
            if last:
                return
            shift += width

    def by(self, codes: NDArray[np.intp], count: int) -> list[int]:
        """Each group's sum, given each value's group (0 to `count` - 1)."""
        totals = [0] * count
        for shift, piece in self.pieces:
            # every partial sum an integer below 2**53: exact in any order
            sums = [float(piece.sum())] if count == 1 else \
                np.bincount(codes, weights=piece, minlength=count).tolist()
            for group, found in enumerate(sums):
                if found:
                    totals[group] += int(found) << shift
        return totals


def integer_sums(values: NDArray[np.int64], codes: NDArray[np.intp], count: int) -> list[int]:
    """Each group's exact sum of `values` (int64, any sign)."""
    return IntegerSums(values).by(codes, count)


class DecimalSums:
    """`sum(amounts, Decimal(0))` of amounts in integer millionths (as
    `columnar_orders.scaled` gives them) by any grouping."""

    def __init__(self, amounts: NDArray[Any], exponents: NDArray[np.int8]) -> None:
        self.amounts, self.exponents = amounts, exponents
        self.by_group = amounts.dtype == object or amounts.size >= _MOST  # beyond int64
        self.one = exponents.size > 0 and exponents.min() == exponents.max()
        least = min(int(exponents.min()), 0) if exponents.size else 0
        # An amount of exponent e is a multiple of 10 ** (6 + e) millionths: summed in those
        # units, the values are narrower (cents: one piece).
        self.unit = 10 ** (AMOUNT_SCALE + least)
        if not self.by_group:
            self.sums = IntegerSums(amounts // self.unit if self.unit > 1 else amounts)

    def by(self, codes: NDArray[np.intp], sizes: list[int]) -> list[Decimal]:
        """Each group's sum, given each amount's group and how many each group has."""
        count = len(sizes)
        if self.by_group:
            order = np.argsort(codes, kind="stable")
            parts = np.split(order, np.cumsum(sizes)[:-1])
            return [decimal_sum(self.amounts[part], self.exponents[part]) for part in parts]
        least = self._least(codes, sizes)
        return [as_decimal(total * self.unit, exponent)
                for total, exponent in zip(self.sums.by(codes, count), least, strict=True)]

    def _least(self, codes: NDArray[np.intp], sizes: list[int]) -> list[int]:
        """Each group's least exponent, at most 0 (0 for an empty group)."""
        if self.one:  # one exponent throughout, as usual
            least = min(int(self.exponents[0]), 0)
            return [least if size else 0 for size in sizes]
        found = np.zeros(len(sizes), dtype=np.int64)
        at_most_0 = np.minimum(self.exponents, 0)
        for exponent in np.flatnonzero(np.bincount(-at_most_0.astype(np.intp))).tolist():
            has = np.bincount(codes[at_most_0 == -exponent], minlength=len(sizes)) > 0
            found[has] = np.minimum(found[has], -exponent)
        return found.tolist()


def decimal_sums(amounts: NDArray[Any], exponents: NDArray[np.int8], codes: NDArray[np.intp],
                 sizes: list[int]) -> list[Decimal]:
    """Each group's `sum(amounts, Decimal(0))`, `sizes` how many each group has."""
    return DecimalSums(amounts, exponents).by(codes, sizes)


class FsumMeans:
    """`stats.mean` (`math.fsum` / count) of finite values by any grouping: a float64 is an
    integer mantissa times a power of two given by its exponent field, so each group's
    mantissas are summed exactly per field and the exact sum rounded once, as `fsum`
    rounds."""

    def __init__(self, values: NDArray[np.float64]) -> None:
        self.values = values
        if values.size >= _MOST:
            return
        bits = values.view(np.int64)
        field = (bits >> 52) & 0x7FF
        # The implicit leading bit, except for zeros and subnormals (field 0).
        mantissa = (bits & _FRACTION) | ((field != 0).astype(np.int64) << 52)
        if (bits < 0).any():
            mantissa = np.where(bits < 0, -mantissa, mantissa)
        fields, self.place = dense_codes(field, 1 << 11)  # a count over the fields, no sort
        # a mantissa counts 2**(field - 1075), a subnormal's 2**-1074
        self.scales = [max(int(f), 1) - 1 for f in fields.tolist()]
        self.sums = IntegerSums(mantissa)

    def by(self, codes: NDArray[np.intp], count: int) -> list[float | None]:
        """Each group's mean, given each value's group (0 to `count` - 1)."""
        sizes = np.bincount(codes, minlength=count).tolist()
        if self.values.size >= _MOST:
            order = np.argsort(codes, kind="stable")
            parts = np.split(self.values[order], np.cumsum(sizes)[:-1])
            return [math.fsum(part.tolist()) / part.size if part.size else None
                    for part in parts]
        fields = len(self.scales)
        totals = self.sums.by(codes * fields + self.place if fields > 1 else codes,
                              count * fields)
        means: list[float | None] = []
        for group, size in enumerate(sizes):
            exact = sum(total << scale for total, scale in
                        zip(totals[group * fields:(group + 1) * fields], self.scales,
                            strict=True))
            means.append(exact / (1 << 1074) / size if size else None)  # correctly rounded
        return means


def fsum_means(values: NDArray[np.float64], codes: NDArray[np.intp], count: int
               ) -> list[float | None]:
    """Each group's `stats.mean` of finite values."""
    return FsumMeans(values).by(codes, count)


def medians(values: NDArray[np.float64], codes: NDArray[np.intp], count: int
            ) -> list[float | None]:
    """Each group's `quantile_of(values, 0.5)` of values that are not NaN: the groups'
    values brought together by a radix sort of their codes, then selected in place group
    by group."""
    if count <= 1:
        return [_median(values.copy())] if count else []
    narrow = np.uint8 if count <= 1 << 8 else np.uint16 if count <= 1 << 16 else np.intp
    order = np.argsort(codes.astype(narrow), kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=count)).tolist()
    grouped = values[order]
    return [_median(grouped[start:end]) for start, end in zip([0, *bounds[:-1]], bounds,
                                                               strict=True)]


def _median(values: NDArray[np.float64]) -> float | None:
    """`quantile_of(values, 0.5)` of values with no NaN, selecting in place (they are a
    copy of the caller's): the same two order statistics, the same float arithmetic."""
    if not values.size:
        return None
    position = 0.5 * (values.size - 1)
    low = int(position)
    high = min(low + 1, values.size - 1)
    if values.size > 2:
        values.partition((low, high))
    else:
        values.sort()
    low_value, high_value = float(values[low]), float(values[high])
    return low_value + (high_value - low_value) * (position - low)
