"""The leaderboard and rep pages over columns, part by part: the board ranked in numpy is
`scores.board`'s bytes for any figures and weights; a share is the `Decimal` quotient's
float; money sums per rep are the `Decimal` sums; the activities in (rep, day) order count
and find what a scan of every activity does; and rep pages stay the `Snapshot`'s while
records arrive after that order was made."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import columnar_scores, rep_page, scores
from projections.columnar_board import board, shares
from projections.columnar_rep_activity import RepActivities, generation, local_day
from projections.columnar_rep_figures import RepFigures, money_by
from projections.columnar_table import INT64_MAX, Table
from projections.columnar_views import as_decimal
from projections.scores import Window, weights_from
from projections.snapshot import Filters, Snapshot
from projections.stats import ratio
from tests.depth import examples
from tests.history import TZ, changes, one_change_at_a_time, simulated

AS_OF = datetime.fromisoformat("2017-06-30T18:00:00+08:00")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def body(answer: dict[str, Any]) -> bytes:
    return bytes(JSONResponse(answer).body)


# Amounts as the columns hold them: integer millionths of a value with 0 to 6 decimals.
exponents = st.integers(-6, 0)
coefficients = (st.integers(0, 10 ** 9) | st.integers(0, 10 ** 16)
                | st.sampled_from([0, 1, 1 << 17, 3 << 17, 10 ** 11 + 3]))


@st.composite
def monies(draw: st.DrawFn) -> tuple[int, int]:
    exponent = draw(exponents)
    return draw(coefficients) * 10 ** (6 + exponent), exponent


def held(millionths: list[int]) -> np.ndarray[Any, np.dtype[Any]]:
    """Amounts as the columns hold them: int64, or Python integers once one is beyond it."""
    fits = all(m <= INT64_MAX for m in millionths)
    return np.array(millionths, dtype=np.int64 if fits else object)


@given(st.lists(st.integers(0, 10 ** 18) | st.sampled_from([0, 1 << 17, 7 << 40]),
                min_size=1, max_size=30))
@settings(max_examples=examples(300))
def test_each_share_is_the_decimal_quotient_as_a_float(values: list[int]) -> None:
    best = max(values)
    expected = [scores._share(Decimal(v).scaleb(-6), Decimal(best).scaleb(-6)) for v in values]
    assert shares(np.array(values, dtype=np.int64), best).tolist() == expected
    assert shares(np.array(values, dtype=object), best).tolist() == expected


def test_shares_near_a_midpoint_between_floats_take_the_decimal_path() -> None:
    # 2**17 divides the best: the float quotient is not proven, the Decimal's is used.
    best = (1 << 17) * 1_000_003
    values = np.array([1, best // 3, best - 1, best], dtype=np.int64)
    assert shares(values, best).tolist() == [scores._share(int(v), best) for v in values]
    assert shares(np.zeros(3, dtype=np.int64), 0).tolist() == [0.0, 0.0, 0.0]


@given(st.lists(st.tuples(st.integers(0, 4), monies()), max_size=40),
       st.booleans())
@settings(max_examples=examples(200))
def test_money_summed_per_group_is_the_decimal_sum(rows: list[tuple[int, tuple[int, int]]],
                                                    beyond_int64: bool) -> None:
    if beyond_int64 and rows:  # a total past int64: summed as Python integers
        rows = [*rows, (rows[0][0], ((1 << 62) // 10 ** 6 * 10 ** 6, 0)),
                (rows[0][0], ((1 << 62) // 10 ** 6 * 10 ** 6, 0))]
    groups = np.array([g for g, _ in rows], dtype=np.int32)
    amounts = held([m for _, (m, _) in rows])
    exps = np.array([e for _, (_, e) in rows], dtype=np.int8)
    totals, exponent = money_by(groups, amounts, exps, 5)
    for group in range(5):
        mine = [as_decimal(m, e) for g, (m, e) in rows if g == group]
        assert str(as_decimal(int(totals[group]), int(exponent[group]))) == \
            str(sum(mine, Decimal(0)))


@st.composite
def figure_sets(draw: st.DrawFn) -> tuple[RepFigures, dict[str, dict[str, Any]]]:
    """The same reps' figures as `RepFigures` and as `scores.rep_figures` gives them."""
    n = draw(st.integers(0, 14))
    counts = st.integers(0, 60)
    reps = [f"r{i}" for i in draw(st.permutations(range(n)))]
    rows = []
    for rep in reps:
        opened, customers = draw(counts), draw(counts)
        rows.append({
            "rep": rep, "name": draw(st.sampled_from([rep.upper(), None])),
            "team": draw(st.sampled_from(["T1", "T2", "T3", None])),
            "manager": draw(st.sampled_from(["M1", None])), "region": "north",
            "won": draw(monies()), "collected": draw(monies()),
            "won_deals": draw(counts), "activities": draw(counts | st.just(7)),
            "open_deals": opened, "followed_up": draw(st.integers(0, opened)),
            "customers": customers, "repeat_customers": draw(st.integers(0, customers))})
    won = held([r["won"][0] for r in rows])
    collected = held([r["collected"][0] for r in rows])

    def column(name: str) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.array([r[name] for r in rows], dtype=np.int64)
    columns = RepFigures(
        reps, [r["name"] for r in rows], [r["team"] for r in rows],
        [r["manager"] for r in rows], [r["region"] for r in rows],
        won, np.array([r["won"][1] for r in rows], dtype=np.int64), column("won_deals"),
        column("activities"), column("open_deals"), column("followed_up"), collected,
        np.array([r["collected"][1] for r in rows], dtype=np.int64), column("customers"),
        column("repeat_customers"))
    figures = {r["rep"]: {
        "won_value": as_decimal(*r["won"]), "won_deals": r["won_deals"],
        "activities": r["activities"], "open_deals": r["open_deals"],
        "followed_up": r["followed_up"], "collected": as_decimal(*r["collected"]),
        "customers": r["customers"], "repeat_customers": r["repeat_customers"],
        "repeat_rate": ratio(r["repeat_customers"], r["customers"]),
        "follow_up_rate": ratio(r["followed_up"], r["open_deals"]),
        "rep": r["rep"], "name": r["name"], "team": r["team"], "manager": r["manager"],
        "region": r["region"]} for r in rows}
    return columns, figures


weights = st.none() | st.fixed_dictionaries({
    k: st.decimals(0, 100, places=1) for k in scores.COMPONENTS}).filter(
        lambda w: sum(w.values()) > 0).map(lambda w: {"weights": w})


@given(figure_sets(), weights,
       st.sampled_from([None, {"team": "T1"}, {"rep": "r1"}, {"team": "T2", "manager": "M1"}]))
@settings(max_examples=examples(300))
def test_the_board_ranked_in_numpy_is_the_board_of_scores(
        figures: tuple[RepFigures, dict[str, dict[str, Any]]],
        scoring: dict[str, Any] | None, select: dict[str, str] | None) -> None:
    columns, dicts = figures
    window = Window(None, None, AS_OF)
    weighed = weights_from(scoring)
    assert body(board(columns, weighed, window, select)) == \
        body(scores.board(dicts, weighed, window, select))


DAY_ZONE = ZoneInfo("America/New_York")  # a day of 23 or 25 hours at each change


@st.composite
def activity_tables(draw: st.DrawFn) -> tuple[Table, int]:
    """Activities over a few days around a change of clocks, and how many were ordered."""
    base = int((datetime(2017, 3, 10, tzinfo=DAY_ZONE) - EPOCH) / timedelta(microseconds=1))
    moments = draw(st.lists(st.integers(0, 5 * 86_400 * 10 ** 6), max_size=60))
    table = Table({"day": np.int32, "rep": np.int32, "at": np.int64}, keyed=False)
    table.extend(len(moments))
    table.cols["at"][:len(moments)] = [base + m for m in moments]
    table.cols["day"][:len(moments)] = [local_day(base + m, DAY_ZONE) for m in moments]
    table.cols["rep"][:len(moments)] = draw(st.lists(st.integers(0, 4), min_size=len(moments),
                                                     max_size=len(moments)))
    return table, draw(st.integers(0, len(moments)))


@given(activity_tables(), st.data())
@settings(max_examples=examples(200))
def test_activities_in_rep_day_order_count_and_find_what_a_scan_does(
        made: tuple[Table, int], data: st.DataObject) -> None:
    table, ordered = made
    size, table.size = table.size, ordered  # the order made before the rest arrived
    index = RepActivities.of(table)
    table.size = size
    rep, at, day = table["rep"][:ordered], table["at"][:ordered], table["day"][:ordered]
    midnights = [int((datetime(2017, 3, d, tzinfo=DAY_ZONE) - EPOCH) / timedelta(microseconds=1))
                 for d in range(10, 16)]  # a day's first moment: none of its rows is before
    moment = data.draw(st.integers(int(at.min(initial=0)) - 1, int(at.max(initial=0)) + 1)
                       | st.sampled_from(midnights))
    counts = index.logged_before(moment, table["at"], DAY_ZONE)
    assert counts.tolist() == [int(((rep == r) & (at < moment)).sum()) for r in index.reps]
    first = data.draw(st.none() | st.sampled_from(day.tolist() or [0]))
    last = data.draw(st.none() | st.sampled_from(day.tolist() or [0]))
    within = (day >= (first if first is not None else day.min(initial=0))) & \
        (day <= (last if last is not None else day.max(initial=0)))
    assert sorted(index.on_days(first, last).tolist()) == np.flatnonzero(within).tolist()
    who = data.draw(st.integers(0, 5))
    assert sorted(index.of_rep(who, first, last).tolist()) == \
        np.flatnonzero(within & (rep == who)).tolist()


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 40))
def test_the_order_serves_until_a_sixteenth_more_rows_have_come(made: int, now: int) -> None:
    low, high = sorted((made, now))
    if generation(low) == generation(high):
        assert high - low < max(1 << 16, low // 16 + 1)


def test_rep_pages_stay_the_snapshots_while_records_arrive_after_the_order() -> None:
    # The activities' order is made at the first checkpoint; later ones read the rest apart.
    pick = random.Random(5)
    zone = ZoneInfo(TZ)
    for index, records, columns in one_change_at_a_time(changes(simulated(days=120)),
                                                         [6, 3, 2]):
        snapshot = Snapshot(records, TZ)
        reps = sorted(records["rep"])
        as_of = datetime(2017, 1, 1, tzinfo=zone) + timedelta(days=pick.randint(20, 125))
        start = datetime(2017, 1, 1, tzinfo=zone) + timedelta(days=pick.randint(0, 60))
        for window in (Window(None, None, as_of), Window(start, start + timedelta(days=45),
                                                         as_of)):
            assert body(columnar_scores.leaderboard(columns, window)) == \
                body(scores.leaderboard(snapshot, window)), (index, window)
            team = snapshot.rep_at(reps[0], None)["team"] or "nobody"
            for filters in (Filters(), Filters(date(2017, 2, 1), None, {"team": team}),
                            Filters(dims={"source": "web"})):
                narrowed = replace(filters, start=window.start.date() if window.start else None)
                rep = pick.choice(reps)
                assert body(columnar_scores.rep_page(columns, narrowed, window, rep)) == \
                    body(rep_page.rep_page(snapshot, narrowed, window, rep)), \
                    (index, narrowed, window, rep)
