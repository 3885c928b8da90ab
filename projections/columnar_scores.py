"""The leaderboard and a rep's page over `Columns`: the answers `scores.py` and
`rep_page.py` give over a `Snapshot` (tests hold them byte-identical), in numpy.

Moments compare as exact microseconds since the epoch, as `datetime`s compare; money is
summed in integer millionths with the exponent Python's `Decimal` sum would have.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import ts
from projections.columnar import NOW, Columns
from projections.columnar_table import micros
from projections.columnar_views import _counted, _row, decimal_sum
from projections.rep_page import UnknownRep, team_average
from projections.scores import FOLLOW_UP_DAYS, Window, board, weights_from
from projections.snapshot import Filters
from projections.stats import ratio


def holds(at: NDArray[np.int64], window: Window) -> NDArray[np.bool_]:
    """`Window.holds` of each moment."""
    keep = at <= micros(window.as_of)
    if window.start is not None:
        keep &= at >= micros(window.start)
    if window.end is not None:
        keep &= at < micros(window.end)
    return keep


def _grouped(codes: NDArray[np.int32], rows: NDArray[np.intp]) -> dict[int, NDArray[np.intp]]:
    """`rows` grouped by their code."""
    if not rows.size:
        return {}
    order = np.argsort(codes, kind="stable")
    codes, rows = codes[order], rows[order]
    starts = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(rows)]
    return {int(codes[s]): rows[s:e] for s, e in pairwise(starts)}


def _sums(amounts: NDArray[Any], exponents: NDArray[np.int8], codes: NDArray[np.int32],
          rows: NDArray[np.intp]) -> dict[int, Decimal]:
    """The exact money sum of `rows` per code."""
    return {code: decimal_sum(amounts[group], exponents[group])
            for code, group in _grouped(codes[rows], rows).items()}


def rep_figures(columns: Columns, window: Window) -> dict[str, dict[str, Any]]:
    """`scores.rep_figures` over the columns."""
    closes = micros(window.closes)
    reps = {rid: r for rid, r in columns.rep_records.items()
            if micros(ts(r["history"][0][0])) <= closes}
    d, a, strings = columns.deals, columns.activities, columns.strings
    owner, size = d["owner"], len(strings.values)
    won = (d["exists"] & (d["status"] == (strings.find("won") or -1)) & (d["closed"] != NOW)
           & holds(d["closed"], window))
    still_open = d["exists"] & (d["created"] <= closes) & (d["closed"] > closes)
    since = micros(window.closes - timedelta(days=FOLLOW_UP_DAYS))
    at = a["at"]
    touching = (a["parent_kind"] == 0) & (at > since) & (at <= closes)
    touched = np.zeros(d.size, dtype=bool)
    touched[a["parent"][touching]] = True
    won_rows = np.flatnonzero(won)
    won_value = _sums(d["amount"], d["amount_exp"], owner, won_rows)
    won_deals = np.bincount(owner[won_rows], minlength=size)
    open_deals = np.bincount(owner[still_open], minlength=size)
    followed_up = np.bincount(owner[still_open & touched], minlength=size)
    activities = np.bincount(a["rep"][holds(at, window)], minlength=size)
    # Customers of won deals, per rep; and each customer's orders booked by the close.
    o = columns.orders.orders
    booked = o["exists"] & (o["booked"] <= closes)
    orders_of = np.bincount(o["customer"][booked], minlength=columns.customers.size)
    customers: dict[int, NDArray[np.int32]] = {}
    for code, rows in _grouped(owner[won_rows], won_rows).items():
        of_rows = d["customer"][rows]
        customers[code] = np.unique(of_rows[of_rows != 0])
    p = columns.orders.payments
    paid = np.flatnonzero(holds(p["at"], window))
    order_rep = columns.orders.rep_of(d, owner)
    collected = _sums(p["amount"], p["amount_exp"], order_rep[p["order"]], paid)
    figures: dict[str, dict[str, Any]] = {}
    for rid, record in reps.items():
        code = strings.find(rid) or 0
        mine = customers.get(code, np.zeros(0, dtype=np.int32))
        repeat = int((orders_of[mine] >= 2).sum())
        figures[rid] = {
            "won_value": won_value.get(code, Decimal(0)), "won_deals": int(won_deals[code]),
            "activities": int(activities[code]), "open_deals": int(open_deals[code]),
            "followed_up": int(followed_up[code]),
            "collected": collected.get(code, Decimal(0)),
            "customers": int(mine.size), "repeat_customers": repeat,
            "repeat_rate": ratio(repeat, int(mine.size)),
            "follow_up_rate": ratio(int(followed_up[code]), int(open_deals[code])),
            "rep": rid, "name": record.get("name"), **columns.rep_at(rid, window.closes)}
    return figures


def leaderboard(columns: Columns, window: Window,
                select: dict[str, str] | None = None) -> dict[str, Any]:
    """`scores.leaderboard` over the columns."""
    scoring = next(iter(columns.records["scoring"].values()), None)
    return board(rep_figures(columns, window), weights_from(scoring), window, select)


def figures(columns: Columns, filters: Filters, rep: str) -> dict[str, Any]:
    """`rep_page.figures` over the columns: the rep's breakdown row."""
    only = {**filters.dims, "rep": rep}
    deals = np.flatnonzero(columns.select("deal", only, filters.start, filters.end,
                                          day="created_day"))
    leads = columns.select("lead", only, filters.start, filters.end, day="created_day")
    converted = int((leads & columns.leads["converted"]).sum())
    activities = int(columns.select("activity", only, filters.start, filters.end,
                                    day="day").sum())
    row = _row(columns, rep, deals, (int(leads.sum()), converted), activities)
    row.pop("key")
    return row


def rep_page(columns: Columns, filters: Filters, window: Window, rep: str,
             board: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`rep_page.rep_page` over the columns; `board`: the rows of `leaderboard(columns,
    window)` when already computed."""
    if rep not in columns.rep_records:
        raise UnknownRep(rep)
    rows = leaderboard(columns, window)["rows"] if board is None else board
    standing = next((r for r in rows if r["rep"] == rep), None)
    at_close = columns.rep_at(rep, window.closes)
    mates = [r["rep"] for r in rows if r["team"] == at_close["team"]] or [rep]
    logged = columns.select("activity", {**filters.dims, "rep": rep}, filters.start,
                            filters.end, day="day")
    days = np.unique(columns.activities["day"][logged], return_counts=True)
    return {
        "rep": rep,
        "name": columns.rep_records[rep].get("name"),
        **at_close,
        "figures": figures(columns, filters, rep),
        "team_reps": len(mates),
        "team_average": team_average([figures(columns, filters, m) for m in mates]),
        "activities_by_kind": _counted(columns, columns.activities["kind"][logged]),
        "activities_by_day": {date.fromordinal(int(day)).isoformat(): int(n)
                              for day, n in zip(*days, strict=True)},
        "score": standing["score"] if standing else None,
        "components": standing["components"] if standing else None,
        "rank_team": standing["rank_team"] if standing else None,
        "rank_company": standing["rank_company"] if standing else None,
        "team_average_score": standing["team_average"]["score"] if standing else None,
    }


def rep_page_or_none(columns: Columns, filters: Filters, window: Window, rep: str,
                     board: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The page, or None when no `rep.joined` names the rep."""
    try:
        return rep_page(columns, filters, window, rep, board)
    except UnknownRep:
        return None
