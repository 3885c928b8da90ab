"""Targets' periods: a period's bounds in the tenant's zone, and a target's in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=4096)
def period_bounds(period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """`2017`, `2017-Q1`, `2017-03` as [start, end) in the tenant's zone."""
    year = int(period[:4])
    if "-Q" in period:
        first = 3 * (int(period[6]) - 1) + 1
        months = 3
    elif len(period) == 7:
        first, months = int(period[5:7]), 1
    else:
        first, months = 1, 12
    end_month = first + months
    start = datetime(year, first, 1, tzinfo=tz)
    end = datetime(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=tz)
    return start, end



@dataclass(frozen=True)
class PaceTarget:
    """A target's key and its period as [start, end) in UTC."""

    key: str
    start: datetime
    end: datetime


