"""Small exact statistics: the definitions every view shares."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def mean(values: Sequence[float]) -> float | None:
    # fsum: exactly rounded, so the mean is the same whatever order the values come in
    return math.fsum(values) / len(values) if values else None


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's and pandas' default)."""
    return quantile_of_sorted(sorted(values), q)


def quantile_of_sorted(ordered: Sequence[float], q: float) -> float | None:
    """`quantile` of values already in ascending order (a list kept sorted as it changes)."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    return quantile(values, 0.5)


def money(value: Decimal) -> str:
    return str(value)


def average_money(total: Decimal, count: int) -> str | None:
    return str((total / count).quantize(CENT, rounding=ROUND_HALF_EVEN)) if count else None
