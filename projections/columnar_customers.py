"""Customers and RFM over `Columns`: the answers `customers.py` gives over a `Snapshot`
(a test holds them byte-identical). Definitions: docs/METRICS.md, "GET /v1/customers".

Each customer is one group of its selected order rows: first and last booking, order
count, booked and collected sums (exact integer millionths with the exponents `Decimal`
sums give). Only the page of an RFM list becomes Python objects.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import DIMENSIONS
from projections.columnar import Columns, months
from projections.columnar_revenue import order_dims, period_keys
from projections.columnar_table import micros
from projections.columnar_views import as_decimal
from projections.customers import ACTIVE_DAYS, SEGMENT_NAMES, _value, scores, segment_of
from projections.snapshot import Filters
from projections.stats import days_between, money, ratio

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MAX = int(np.iinfo(np.int64).max)


@dataclass
class Buyers:
    """The customers with a selected order by as_of, by id, as parallel columns."""

    ids: list[str]
    orders: NDArray[np.int64]  # order count
    first: NDArray[np.int64]  # the first order's row
    last: NDArray[np.int64]  # the last order's row
    booked: list[Decimal]
    collected: list[Decimal]
    order_rows: NDArray[np.int64]  # every selected order's row
    order_buyer: NDArray[np.int64]  # its customer's position in `ids`


def _group_sums(amounts: NDArray[Any], exponents: NDArray[np.int8], group: NDArray[np.int64],
                groups: int) -> list[Decimal]:
    """Per group, `sum(amounts, Decimal(0))` of amounts in millionths, exactly."""
    exponent = np.zeros(groups, dtype=np.int64)
    if group.size:
        np.minimum.at(exponent, group, exponents.astype(np.int64))
    if amounts.dtype != object and (not amounts.size
                                    or int(np.abs(amounts).max()) * amounts.size < _INT64_MAX):
        totals = np.zeros(groups, dtype=np.int64)
        np.add.at(totals, group, amounts)
        values = totals.tolist()
    else:  # beyond int64: Python's integers
        values = [0] * groups
        for g, amount in zip(group.tolist(), amounts.tolist(), strict=True):
            values[g] += int(amount)
    return [as_decimal(v, e) for v, e in zip(values, exponent.tolist(), strict=True)]


def buyers(columns: Columns, filters: Filters, as_of: datetime) -> Buyers:
    """`customers.buyers`: customers with a selected order by as_of (`from`/`to` not
    applied)."""
    o, p = columns.orders.orders, columns.orders.payments
    moment = micros(as_of)
    keep = o["exists"] & (o["booked"] <= moment)
    for name, value in filters.dims.items():
        if name in DIMENSIONS:
            code = columns.strings.find(value)
            keep &= order_dims(columns, name) == code if code else False
    rows = np.flatnonzero(keep)
    customer = o["customer"][rows]
    unique, group = np.unique(customer, return_inverse=True)
    keys = columns.customers.keys
    assert keys is not None
    names = [keys.key(int(row)) for row in unique.tolist()]
    by_id = np.array(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
    position = np.empty(len(names), dtype=np.int64)
    position[by_id] = np.arange(len(names))
    group = position[group]  # groups numbered in customer id order
    n = len(names)
    ordered = np.lexsort((o["booked"][rows], group))  # stable: ties keep row order
    starts = np.searchsorted(group[ordered], np.arange(n), side="left")
    ends = np.searchsorted(group[ordered], np.arange(n), side="right") - 1
    paid = np.flatnonzero(keep[p["order"]] & (p["at"] <= moment))
    payer = np.full(o.size, -1, dtype=np.int64)
    payer[rows] = group
    return Buyers(
        ids=[names[i] for i in by_id.tolist()],
        orders=np.bincount(group, minlength=n).astype(np.int64),
        first=rows[ordered[starts]], last=rows[ordered[ends]],
        booked=_group_sums(o["amount"][rows], o["amount_exp"][rows], group, n),
        collected=_group_sums(p["amount"][paid], p["amount_exp"][paid],
                              payer[p["order"][paid]], n),
        order_rows=rows, order_buyer=group)


def rfm_scores(columns: Columns, who: Buyers) -> tuple[list[int], list[int], list[int], list[str]]:
    """R, F, M and segment of each buyer (`customers.rfm`)."""
    booked_at = columns.orders.orders["booked"]
    rs = scores(booked_at[who.last].tolist())
    fs = scores(who.orders.tolist())
    ms = scores(who.booked)
    segments = [segment_of(r, f, m, n) for r, f, m, n in
                zip(rs, fs, ms, who.orders.tolist(), strict=True)]
    return rs, fs, ms, segments


def _moment(columns: Columns, row: int) -> datetime:
    """An order's booking time, with the offset it was written with."""
    o = columns.orders.orders
    offset = timezone(timedelta(seconds=int(o["booked_offset"][row])))
    return (_EPOCH + timedelta(microseconds=int(o["booked"][row]))).astimezone(offset)


def _retention(columns: Columns, who: Buyers, cohort: NDArray[np.int64], key: str,
               as_of: datetime) -> dict[str, Any]:
    o = columns.orders.orders
    first_month = int(months(o["booked_day"][who.first[cohort[:1]]])[0])
    local = as_of.astimezone(columns.tz)
    span = local.year * 12 + local.month - 1 - first_month + 1
    mine = np.zeros(len(who.ids), dtype=bool)
    mine[cohort] = True
    chosen = mine[who.order_buyer]
    buyer = who.order_buyer[chosen]
    offset = (months(o["booked_day"][who.order_rows[chosen]])
              - months(o["booked_day"][who.first[buyer]]))
    pairs = np.unique(buyer * (span + 1) + offset)  # each month once per buyer
    retained = np.bincount(pairs % (span + 1), minlength=span)[:span].tolist()
    return {"cohort": key, "customers": len(cohort), "retained": retained,
            "rates": [count / len(cohort) for count in retained]}


def customers(columns: Columns, filters: Filters, as_of: datetime,
              by: str = "month") -> dict[str, Any]:
    """`customers.customers` over the column store."""
    o = columns.orders.orders
    who = buyers(columns, filters, as_of)
    first_day = o["booked_day"][who.first]
    new = np.ones(len(who.ids), dtype=bool)
    if filters.start is not None:
        new &= first_day >= filters.start.toordinal()
    if filters.end is not None:
        new &= first_day <= filters.end.toordinal()
    new_rows = np.flatnonzero(new)
    cohort_of = period_keys(first_day[new_rows], "month")
    cohorts: dict[str, list[int]] = {}
    for key, buyer in sorted(zip(cohort_of.tolist(), new_rows.tolist(), strict=True)):
        cohorts.setdefault(key, []).append(buyer)
    new_by_period = Counter(period_keys(first_day[new_rows], by).tolist())
    repeat = int(np.count_nonzero(who.orders >= 2))
    since = micros(as_of - timedelta(days=ACTIVE_DAYS))
    segments = Counter(rfm_scores(columns, who)[3])
    return {
        "as_of": as_of.isoformat(),
        "by": by,
        "customers": len(who.ids),
        "active": int(np.count_nonzero(o["booked"][who.last] > since)),
        "new": len(new_rows),
        "new_by_period": [{"key": k, "new": new_by_period[k]} for k in sorted(new_by_period)],
        "repeat_customers": repeat,
        "repeat_rate": ratio(repeat, len(who.ids)),
        "lifetime_value": {"booked": _value(who.booked), "collected": _value(who.collected)},
        "retention": [_retention(columns, who, np.array(cohorts[k], dtype=np.int64), k, as_of)
                      for k in sorted(cohorts)],
        "rfm_segments": {name: segments[name] for name in SEGMENT_NAMES},
    }


def rfm_list(columns: Columns, filters: Filters, as_of: datetime, *, limit: int, offset: int,
             segment: str | None = None) -> dict[str, Any]:
    """`customers.rfm_list` over the column store."""
    who = buyers(columns, filters, as_of)
    rs, fs, ms, segments = rfm_scores(columns, who)
    rows = [i for i, name in enumerate(segments) if segment is None or name == segment]
    page = []
    for i in rows[offset:offset + limit]:
        first, last = _moment(columns, int(who.first[i])), _moment(columns, int(who.last[i]))
        page.append({
            "customer": who.ids[i],
            "first_order_at": first.isoformat(),
            "last_order_at": last.isoformat(),
            "recency_days": days_between(last, as_of),
            "frequency": int(who.orders[i]),
            "monetary": money(who.booked[i]),
            "collected": money(who.collected[i]),
            "r": rs[i], "f": fs[i], "m": ms[i],
            "segment": segments[i],
        })
    return {"as_of": as_of.isoformat(), "total": len(rows), "limit": limit, "offset": offset,
            "customers": page}
