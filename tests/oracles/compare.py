"""Answers made comparable: amounts as exact Decimals, times as instants, floats to 1e-9."""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

AMOUNTS = {"booked", "collected", "avg_order_value", "outstanding", "0-30", "31-60", "61-90",
           ">90", "total", "mean", "median", "monetary"}
TIMES = {"first_order_at", "last_order_at", "as_of"}


def comparer(amounts: Collection[str], times: Collection[str] = ()) -> Callable[..., Any]:
    """`comparable(answer)` for a family whose amount fields (and time fields) are named."""

    def comparable(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: comparable(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [comparable(v, key) for v in value]
        if key in amounts and value is not None:
            return Decimal(value)
        if key in times and value is not None:
            return pd.Timestamp(value)
        if isinstance(value, float):
            return pytest.approx(value, rel=1e-9, abs=1e-9)
        return value

    return comparable


comparable = comparer(AMOUNTS, TIMES)
