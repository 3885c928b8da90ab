"""Orders and payments from the raw events, with the dimensions docs/METRICS.md gives them.

Shared by the revenue and customers oracles. Like `tests/oracle.py` (whose private
helpers it reuses) it imports no service code. Amounts are integer micro-units (int64)
so that pandas sums and cumulative sums are exact; `to_money` turns them back.

Choices (the service must agree): the first `order.booked` of an order id counts;
payments naming an unknown order, or accepted before its booking, are ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

from tests import oracle

MICRO = 10**6
DEFAULT_STAGES = ["prospecting", "qualification", "proposal", "negotiation"]
DIMENSIONS = oracle.DIMENSIONS


def micro(value: Any) -> int:
    amount = oracle._dec(value)
    assert amount is not None
    return int(amount * MICRO)


def to_money(units: int) -> Decimal:
    return Decimal(int(units)) / MICRO


def orders_and_payments(events: list[dict], tz: str,
                        stages: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders indexed by order id: booked_at, customer, amount, dims; payments: order_id,
    at, amount, seq), every payment beside its order's dims."""
    raw = oracle._raw(events, tz)
    ent = oracle._entities(events, stages or DEFAULT_STAGES, tz)
    deals = ent["deals"]
    reps = oracle._rep_history(raw)
    segment_of = oracle._customers(raw)["segment"]

    booked = oracle._first_by(oracle._of_type(raw, "order.booked", [
        "order_id", "customer_id", "amount", "deal_id", "product"]), "order_id")
    orders = booked.rename(columns={"at": "booked_at", "customer_id": "customer"})
    orders = orders.set_index("order_id")
    orders["amount"] = orders["amount"].map(micro).astype("int64")
    orders["rep"] = oracle._lookup(orders["deal_id"], deals["rep"])
    orders[["team", "manager", "region"]] = oracle._rep_at(
        reps, orders["rep"], orders["booked_at"]).to_numpy()
    orders["source"] = oracle._lookup(orders["deal_id"], deals["source"])
    orders["product"] = orders["product"].where(
        orders["product"].notna(), oracle._lookup(orders["deal_id"], deals["product"]))
    orders["segment"] = oracle._lookup(orders["customer"], segment_of)
    orders[list(DIMENSIONS)] = orders[list(DIMENSIONS)].astype(object)
    orders[list(DIMENSIONS)] = orders[list(DIMENSIONS)].where(
        orders[list(DIMENSIONS)].notna(), None)

    paid = oracle._of_type(raw, "payment.received", ["payment_id", "order_id", "amount"])
    paid = paid[paid["order_id"].isin(orders.index)]
    paid = paid[paid["seq"] > oracle._align(paid["order_id"], orders["seq"])].copy()
    paid["amount"] = paid["amount"].map(micro).astype("int64")
    paid = paid.sort_values("seq").reset_index(drop=True)
    for dim in DIMENSIONS:
        paid[dim] = oracle._lookup(paid["order_id"], orders[dim])
    return orders, paid


def keep_dims(frame: pd.DataFrame, filters: dict | None) -> pd.DataFrame:
    dims = {k: v for k, v in (filters or {}).items() if k in DIMENSIONS and v is not None}
    return oracle._select(frame, dims, "at", "UTC")


def keep_dates(frame: pd.DataFrame, filters: dict | None, time_col: str, tz: str) -> pd.DataFrame:
    dates = {k: v for k, v in (filters or {}).items() if k in ("from", "to") and v is not None}
    return oracle._select(frame, dates, time_col, tz)
