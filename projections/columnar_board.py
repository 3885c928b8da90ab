"""The leaderboard of `RepFigures` (`scores.board` over the columns), in numpy: the same
answer, byte for byte, without a Python loop per rep but the one that writes the rows.

Each float comes from the same IEEE operations, in the same order, as in `scores.board`.
A share `float(Decimal(value) / Decimal(best)) * 100` is numpy's quotient of the two
integers where that is proven the same (`_fast_division` in `columnar_targets`: reduced,
a divisor below 1e11 and not a multiple of 2**17), else the `Decimal`'s; `sum` of two
parts is (0 + a) + b, and of the weighted components 0 + ...; team averages use
`math.fsum` as `stats.mean` does.
"""

from __future__ import annotations

import math
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar_rep_figures import RepFigures
from projections.columnar_views import as_decimal
from projections.scores import COMPONENTS, Window, board_answer

EXACT_FLOATS = 1 << 53  # integers below this are exact as float64
_DIVISOR_LIMIT = 10 ** 11


def shares(values: NDArray[Any], best: int) -> NDArray[np.float64]:
    """`scores._share` of each value against `best` (counts, or both in millionths)."""
    out = np.zeros(len(values), dtype=np.float64)
    if not best:
        return out
    slow = np.ones(len(values), dtype=bool)
    if values.dtype != object and abs(best) < EXACT_FLOATS:
        divisor = np.gcd(values, best)
        numerator, denominator = values // divisor, best // divisor
        fast = ((numerator >= 0) & (numerator < EXACT_FLOATS) & (denominator > 0)
                & (denominator < _DIVISOR_LIMIT) & (denominator % (1 << 17) != 0))
        out[fast] = numerator[fast] / denominator[fast] * 100
        slow = ~fast
    for i in np.flatnonzero(slow).tolist():
        out[i] = float(Decimal(int(values[i])) / Decimal(best)) * 100
    return out


def _best(values: NDArray[Any]) -> int:
    """`max(values, default=0)`."""
    return int(values.max()) if len(values) else 0


def _rate(part: NDArray[np.int64], whole: NDArray[np.int64]) -> NDArray[np.float64]:
    """`stats.ratio` of each pair; NaN where `whole` is 0."""
    rates: NDArray[np.float64] = np.divide(part, whole, out=np.full(len(part), np.nan),
                                           where=whole != 0)
    return rates


def _with_rate(share: NDArray[np.float64], rate: NDArray[np.float64]) -> NDArray[np.float64]:
    """`scores._mean_of_defined(share, 100 * rate)`, the rate left out where NaN."""
    both = (share + 100 * np.nan_to_num(rate)) / 2
    return np.where(np.isnan(rate), share, both)


def _ranks(scores: NDArray[np.float64], groups: NDArray[np.intp]) -> NDArray[np.int64]:
    """`scores._rank` within each group: 1 + how many of its scores are higher."""
    _, level = np.unique(scores, return_inverse=True)
    width = int(level.max(initial=0)) + 2
    keys = np.sort(groups.astype(np.int64) * width + level)
    ends = np.searchsorted(keys, (groups.astype(np.int64) + 1) * width)
    ranks: NDArray[np.int64] = 1 + ends - np.searchsorted(keys, groups * width + level,
                                                          side="right")
    return ranks


def _team_averages(teams: NDArray[np.intp], parts: list[list[float]]
                   ) -> list[dict[str, float | None]]:
    """Per team code: the mean (`stats.mean`) of each part (score, then the components)
    over its reps."""
    order = np.argsort(teams, kind="stable")
    bounds = [0, *(np.flatnonzero(np.diff(teams[order])) + 1).tolist(), len(order)]
    picked = order.tolist()
    ordered = [[part[i] for i in picked] for part in parts]
    averages: list[dict[str, float | None]] = [{} for _ in range(int(teams.max(initial=-1)) + 1)]
    for low, high in pairwise(bounds):
        if high > low:
            averages[int(teams[picked[low]])] = {
                name: math.fsum(values[low:high]) / (high - low)
                for name, values in zip(("score", *COMPONENTS), ordered, strict=True)}
    return averages


def _money(millionths: NDArray[Any], exponents: NDArray[np.int64]) -> list[str]:
    """`str(as_decimal(m, e))` of each: written from the integers where they are int64 and
    whole in their exponent's unit (a sum of such amounts always is)."""
    unit = 10 ** (6 + exponents)
    if millionths.dtype == object or (millionths < 0).any() or (millionths % unit).any():
        return [str(as_decimal(m, e)) for m, e in zip(millionths.tolist(), exponents.tolist(),
                                                      strict=True)]
    whole, part = np.divmod(millionths, 10 ** 6)
    written = {e: f"%d.%0{-e}d" for e in range(-6, 0)}
    return [written[e] % (w, p) if e else str(w) for w, p, e in zip(
        whole.tolist(), (part // unit).tolist(), exponents.tolist(), strict=True)]


def _or_none(values: NDArray[np.float64]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def board(figures: RepFigures, weights: dict[str, Decimal], window: Window,
          select: dict[str, str] | None = None) -> dict[str, Any]:
    """`scores.board` of the figures."""
    f = figures
    follow_up_rate, repeat_rate = (_rate(f.followed_up, f.open_deals),
                                   _rate(f.repeat_customers, f.customers))
    results = shares(f.won_value, _best(f.won_value))
    process = _with_rate(shares(f.activities, _best(f.activities)), follow_up_rate)
    customer = _with_rate(shares(f.collected, _best(f.collected)), repeat_rate)
    w = [float(weights[k]) for k in COMPONENTS]
    scores = (0.0 + w[0] * results + w[1] * process + w[2] * customer) / 100
    team_of: dict[str | None, int] = {}
    teams = np.array([team_of.setdefault(t, len(team_of)) for t in f.teams], dtype=np.intp)
    rank_company = _ranks(scores, np.zeros(len(teams), dtype=np.intp)).tolist()
    rank_team = _ranks(scores, teams).tolist()
    sizes = np.bincount(teams, minlength=len(team_of))[teams].tolist()
    parts = [scores.tolist(), results.tolist(), process.tolist(), customer.tolist()]
    averages = _team_averages(teams, parts)
    rows = [{
        "rep": rep, "name": name, "team": team, "manager": manager, "region": region,
        "score": score, "components": {"results": r, "process": p, "customer": c},
        "figures": {"won_value": won_value, "won_deals": won_deals, "activities": logged,
                    "open_deals": open_deals, "followed_up": followed_up,
                    "follow_up_rate": fu_rate, "collected": collected, "customers": customers,
                    "repeat_customers": repeat, "repeat_rate": rr},
        "rank_company": company, "rank_team": in_team, "team_size": size,
        "team_average": dict(averages[team_code]),
    } for (rep, name, team, manager, region, score, r, p, c, won_value, won_deals, logged,
           open_deals, followed_up, fu_rate, collected, customers, repeat, rr, company,
           in_team, size, team_code) in zip(
        f.reps, f.names, f.teams, f.managers, f.regions, *parts,
        _money(f.won_value, f.won_exponent), f.won_deals.tolist(), f.activities.tolist(),
        f.open_deals.tolist(), f.followed_up.tolist(), _or_none(follow_up_rate),
        _money(f.collected, f.collected_exponent), f.customers.tolist(),
        f.repeat_customers.tolist(), _or_none(repeat_rate), rank_company, rank_team, sizes,
        teams.tolist(), strict=True)]
    by_rep = np.array(sorted(range(len(rows)), key=f.reps.__getitem__), dtype=np.intp)
    by_rank = by_rep[np.argsort(np.array(rank_company, dtype=np.int64)[by_rep], kind="stable")]
    # by (rank_company, rep)
    return board_answer(window, weights, [rows[i] for i in by_rank.tolist()], select)
