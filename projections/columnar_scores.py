"""The leaderboard and a rep's page over `Columns`: the answers `scores.py` and
`rep_page.py` give over a `Snapshot` (tests hold them byte-identical), in numpy.

The leaderboard is every rep's figures as arrays (`columnar_rep_figures`) ranked by
`columnar_board`. A rep page averages its team's breakdown rows: those are made in one
pass over the deals and the leads for the whole team, from each mate's own activities.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_board import board
from projections.columnar_rep_activity import rep_activities
from projections.columnar_rep_figures import rep_figures
from projections.columnar_views import _counted, _row
from projections.rep_page import UnknownRep, team_average
from projections.scores import Window, weights_from
from projections.snapshot import Filters


def leaderboard(columns: Columns, window: Window,
                select: dict[str, str] | None = None) -> dict[str, Any]:
    """`scores.leaderboard` over the columns."""
    scoring = next(iter(columns.records["scoring"].values()), None)
    return board(rep_figures(columns, window), weights_from(scoring), window, select)


def _chosen(columns: Columns, what: str, tests: list[tuple[NDArray[np.int32], int]] | None,
            filters: Filters, day: str, rows: NDArray[Any]) -> NDArray[Any]:
    """The `rows` of `what` that `Columns.keeps` keeps for `tests` and the filters' days."""
    if tests is None:
        return rows[:0]
    table = columns.table(what)
    keep = table["exists"][rows] if what != "activity" else np.ones(len(rows), dtype=bool)
    for values, code in tests:
        keep &= values[rows] == code
    days = table[day][rows]
    if filters.start is not None:
        keep &= days >= filters.start.toordinal()
    if filters.end is not None:
        keep &= days <= filters.end.toordinal()
    kept_rows: NDArray[Any] = rows[keep]
    return kept_rows


def _logged_by(columns: Columns, filters: Filters, code: int,
               tests: list[tuple[NDArray[np.int32], int]] | None) -> NDArray[np.int32]:
    """The activities rep code `code` logged that the filters (but `rep`) keep."""
    index, a = rep_activities(columns), columns.activities
    first = filters.start.toordinal() if filters.start is not None else None
    last = filters.end.toordinal() if filters.end is not None else None
    tail = index.rows + np.flatnonzero(a["rep"][index.rows:a.size] == code).astype(np.int32)
    return _chosen(columns, "activity", tests, filters, "day",
                   np.concatenate([index.of_rep(code, first, last), tail]))


def figures_of(columns: Columns, filters: Filters, reps: list[str]
               ) -> dict[str, dict[str, Any]]:
    """`figures(columns, filters, rep)` of each of `reps`: one pass over the deals and the
    leads for all of them, and only their own activities."""
    dims = {k: v for k, v in filters.dims.items() if k != "rep"}
    codes = {rep: columns.strings.find(rep) or 0 for rep in reps}
    wanted = np.zeros(len(columns.strings.values), dtype=bool)
    wanted[[code for code in codes.values() if code]] = True
    d, lead = columns.deals, columns.leads
    deals = _chosen(columns, "deal", columns.tests("deal", dims), filters, "created_day",
                    np.flatnonzero(wanted[d["owner"]]))
    leads = _chosen(columns, "lead", columns.tests("lead", dims), filters, "created_day",
                    np.flatnonzero(wanted[lead["owner"]]))
    deal_owner, lead_owner = d["owner"][deals], lead["owner"][leads]
    converted = lead_owner[lead["converted"][leads]]
    activity_tests = columns.tests("activity", dims)
    out = {}
    for rep, code in codes.items():  # code 0: a rep no row names
        logged = len(_logged_by(columns, filters, code, activity_tests)) if code else 0
        row = _row(columns, rep, deals[deal_owner == code] if code else deals[:0],
                   (int((lead_owner == code).sum()) if code else 0,
                    int((converted == code).sum()) if code else 0), logged)
        row.pop("key")
        out[rep] = row
    return out


def figures(columns: Columns, filters: Filters, rep: str) -> dict[str, Any]:
    """`rep_page.figures` over the columns: the rep's breakdown row."""
    return figures_of(columns, filters, [rep])[rep]


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
    of = figures_of(columns, filters, list(dict.fromkeys([rep, *mates])))
    code = columns.strings.find(rep) or 0
    tests = columns.tests("activity", {k: v for k, v in filters.dims.items() if k != "rep"})
    logged = _logged_by(columns, filters, code, tests) if code else np.zeros(0, np.int32)
    days = np.unique(columns.activities["day"][logged], return_counts=True)
    return {
        "rep": rep,
        "name": columns.rep_records[rep].get("name"),
        **at_close,
        "figures": of[rep],
        "team_reps": len(mates),
        "team_average": team_average([of[m] for m in mates]),
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
