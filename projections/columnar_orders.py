"""A tenant's orders and their payments in columns, beside the deals they came from.

An order row refers to its deal and customer rows (the `Columns` key spaces), so the
rep an order counts for is its deal's owner, read when an answer needs it. Payments
are one row each; the reducer only ever appends them, so a changed order brings only
its new ones (as activities do). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import ts
from projections.columnar_table import AMOUNT_SCALE, INT64_MAX, Table, micros
from projections.facts import Record


def scaled(amount: str) -> tuple[int, int]:
    """A decimal string as integer millionths and its `Decimal` exponent (at least -6)."""
    value = Decimal(amount)
    return int(value.scaleb(AMOUNT_SCALE)), max(int(value.as_tuple().exponent), -AMOUNT_SCALE)


def _offset_seconds(moment: datetime) -> int:
    offset = moment.utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _store_amounts(table: Table, rows: Any, amounts: list[int]) -> None:
    if amounts and max(amounts) > INT64_MAX and table.cols["amount"].dtype != object:
        table.cols["amount"] = table.cols["amount"].astype(object)  # beyond int64
    table.cols["amount"][rows] = amounts


class Orders:
    """Orders (keyed by order id) and payments (one row each, in arrival order)."""

    def __init__(self) -> None:
        self.orders = Table({"exists": bool, "booked": np.int64, "booked_day": np.int32,
                             "amount": np.int64, "amount_exp": np.int8, "deal": np.int32,
                             "customer": np.int32, "product": np.int32,
                             "payments": np.int32, "booked_offset": np.int32})
        self.payments = Table({"order": np.int32, "at": np.int64, "day": np.int32,
                               "amount": np.int64, "amount_exp": np.int8}, keyed=False)

    def put_many(self, records: list[Record], deals: Table, customers: Table,
                 day: Callable[[datetime], int], code: Callable[[str | None], int]) -> None:
        """Take orders' latest states; `day` gives an instant's local date as an ordinal,
        `code` a dimension value's code."""
        o = self.orders
        rows = o.rows([r["id"] for r in records])
        amounts = [scaled(r["amount"]) for r in records]
        _store_amounts(o, rows, [a for a, _ in amounts])
        o.cols["amount_exp"][rows] = [e for _, e in amounts]
        booked = [ts(r["booked_at"]) for r in records]
        o.cols["booked"][rows] = [micros(moment) for moment in booked]
        o.cols["booked_day"][rows] = [day(moment) for moment in booked]
        # The offset it was written with: answers print the booking time as it came.
        o.cols["booked_offset"][rows] = [_offset_seconds(moment) for moment in booked]
        o.cols["product"][rows] = [code(r.get("product") or None) for r in records]
        o.cols["deal"][rows] = deals.rows([r.get("deal") for r in records])
        o.cols["customer"][rows] = customers.rows([r.get("customer") for r in records])
        o.cols["exists"][rows] = True
        self._put_payments(rows, records, day)

    def _put_payments(self, rows: list[int], records: list[Record],
                      day: Callable[[datetime], int]) -> None:
        new: dict[str, list[int]] = {"order": [], "at": [], "day": [], "amount": [],
                                     "amount_exp": []}
        for row, r in zip(rows, records, strict=True):
            received = r.get("payments") or ()
            for at, amount, _pid in received[int(self.orders.cols["payments"][row]):]:
                millionths, exponent = scaled(amount)
                new["order"].append(row)
                moment = ts(at)
                new["at"].append(micros(moment))
                new["day"].append(day(moment))
                new["amount"].append(millionths)
                new["amount_exp"].append(exponent)
            self.orders.cols["payments"][row] = len(received)
        p = self.payments
        start = p.size
        p.extend(len(new["order"]))
        span = slice(start, p.size)
        _store_amounts(p, span, new.pop("amount"))
        for name, values in new.items():
            p.cols[name][span] = values

    def rep_of(self, deals: Table, owners: NDArray[np.int32]) -> NDArray[np.int32]:
        """Each order's rep: its deal's owner (0 when the order names no deal it has)."""
        deal = self.orders["deal"]
        return np.where(deals["exists"][deal], owners[deal], 0)
