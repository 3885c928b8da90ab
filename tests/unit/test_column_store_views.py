"""The leaderboard, rep pages, cycle, targets, revenue, dimensions and leads answered from
columns are byte for byte the `Snapshot` views' answers at a fixed `as_of`, for every
parameter their routes take (windows, periods, groupings, filters on every dimension, reps known
and unknown), whether the records were loaded whole or changed batch by batch as the
projector applies them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.responses import JSONResponse

from events.vocabulary import DIMENSIONS, TARGET_METRICS
from projections import (
    activity,
    columnar_activity,
    columnar_cycle,
    columnar_dimensions,
    columnar_export,
    columnar_leads,
    columnar_revenue,
    columnar_scores,
    cycle,
    derived,
    dimensions,
    export,
    leads,
    rep_page,
    revenue,
    scores,
    targets,
)
from projections.columnar import Columns
from projections.columnar_targets import column_targets
from projections.facts import Record
from projections.rep_page import UnknownRep
from projections.scores import Window
from projections.snapshot import Filters, Snapshot
from projections.targets import Period
from tests.history import TZ, changes, columns_from, fold, one_change_at_a_time, simulated
from tests.unit.test_deal_export_stream import rendered, streamed
from tests.unit.test_scores import WORLD
from tests.unit.test_targets import EXTRA

ZONE = ZoneInfo(TZ)
AS_OF = ("2017-06-15T12:00:00+08:00", "2017-12-31T18:00:00+08:00", "2017-03-01T00:00:00Z")


def body(answer: dict[str, Any]) -> bytes:
    """The bytes the API sends for an answer (a numpy scalar left in it fails here)."""
    return bytes(JSONResponse(answer).body)


@cache
def year() -> tuple[dict[str, dict[str, Record]], Snapshot, Columns]:
    records = fold(simulated() + EXTRA)  # the simulator sets targets of a few kinds only
    return records, Snapshot(records, TZ), columns_from(records)


def windows(seed: int) -> Iterator[Window]:
    """What `period`, `from`/`to` and `as_of` make of a window: none, each kind of period,
    open ends, and random spans."""
    for text in AS_OF:
        as_of = datetime.fromisoformat(text)
        yield Window(None, None, as_of)
        for period in ("2017", "2017-Q2", "2017-03", "2016"):
            span = Period.parse(period, ZONE)
            yield Window(span.start, span.end, as_of)
    pick = random.Random(seed)
    for _ in range(4):
        start = datetime(2017, pick.randint(1, 12), pick.randint(1, 28), tzinfo=ZONE)
        end = start + timedelta(days=pick.randint(1, 200))
        as_of = datetime.fromisoformat(pick.choice(AS_OF))
        yield Window(start if pick.random() < 0.7 else None,
                     end if pick.random() < 0.7 else None, as_of)


def values(snapshot: Snapshot) -> dict[str, list[str]]:
    return {name: sorted({v for d in snapshot.deals if (v := d.dims.get(name))})
            for name in DIMENSIONS}


def filter_cases(snapshot: Snapshot, seed: int, count: int = 8) -> Iterator[Filters]:
    """No filter, values of every dimension, one nobody has, dates, and random mixes."""
    known = values(snapshot)
    yield Filters()
    for name in DIMENSIONS:
        for value in known[name][:2]:
            yield Filters(dims={name: value})
    yield Filters(dims={"team": "nobody"})
    yield Filters(date(2017, 3, 1), date(2017, 5, 31))
    pick = random.Random(seed)
    for _ in range(count):
        dims: dict[str, str] = {name: pick.choice(known[name])
                                for name in pick.sample(DIMENSIONS, 2)
                                if known[name]}
        yield Filters(date(2017, pick.randint(1, 12), 1) if pick.random() < 0.5 else None,
                      date(2017, 12, 31) if pick.random() < 0.5 else None, dims)


def same_leaderboards(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    known = values(snapshot)

    def some(name: str, index: int) -> str:  # a value that occurs, if any does
        return known[name][index % len(known[name])] if known[name] else "nobody"
    selects = [{}, {"team": some("team", 0)}, {"manager": some("manager", -1)},
               {"region": some("region", 0)}, {"rep": some("rep", 1)}, {"rep": "nobody"},
               {"team": some("team", -1), "region": some("region", -1)}]
    for window in windows(seed):
        for select in selects:
            assert body(columnar_scores.leaderboard(columns, window, select)) == \
                body(scores.leaderboard(snapshot, window, select)), (window, select)


def same_rep_pages(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    reps = sorted(snapshot.records["rep"])
    pick = random.Random(seed)
    for window in list(windows(seed))[::3]:
        for filters in list(filter_cases(snapshot, seed, count=2))[::4]:
            # The route sets from/to from the window (`GET /v1/reps/{rep_id}`).
            narrowed = replace(filters, start=window.start.date() if window.start else None,
                               end=(window.end - timedelta(days=1)).date() if window.end
                               else None)
            for given in (filters, narrowed):
                rep = pick.choice(reps)
                assert body(columnar_scores.rep_page(columns, given, window, rep)) == \
                    body(rep_page.rep_page(snapshot, given, window, rep)), (given, window, rep)
    with pytest.raises(UnknownRep):
        columnar_scores.rep_page(columns, Filters(), Window(None, None, datetime.now(ZONE)),
                                 "nobody")
    assert columnar_scores.rep_page_or_none(
        columns, Filters(), Window(None, None, datetime.now(ZONE)), "nobody") is None


def same_cycles(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    for filters in filter_cases(snapshot, seed):
        for text in AS_OF:
            as_of = datetime.fromisoformat(text)
            assert body(columnar_cycle.cycle(columns, filters, as_of)) == \
                body(cycle.cycle(snapshot, filters, as_of)), (filters, as_of)


def same_targets(snapshot: Snapshot, columns: Columns) -> None:
    known = values(snapshot)
    teams, reps = known["team"][:2] + ["nobody"], known["rep"][:2] + ["nobody"]
    for text in AS_OF:
        as_of = datetime.fromisoformat(text)
        for asked in (
                *({"scope": scope} for scope in (None, "company", "team", "rep")),
                *({"period": period} for period in ("2017", "2017-Q3", "2017-02", "2016")),
                *({"metric": metric} for metric in TARGET_METRICS),
                *({"team": team} for team in teams), *({"rep": rep} for rep in reps),
                *({"standing": standing} for standing in (*targets.STANDINGS, "later")),
                {"standing": "under_way", "team": teams[0], "metric": "new_leads"},
                {"scope": "rep", "period": "2017-Q3", "metric": "collected",
                 "team": teams[0]}):
            assert body(column_targets(columns, as_of, **asked)) == \
                body(targets.targets(snapshot, as_of, **asked)), (asked, as_of)


def same_revenue(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    for filters in list(filter_cases(snapshot, seed, count=4))[::2]:
        for by in revenue.GROUPINGS:
            for text in AS_OF:
                as_of = datetime.fromisoformat(text)
                assert body(columnar_revenue.revenue(columns, filters, by, as_of)) == \
                    body(revenue.revenue(snapshot, filters, by, as_of)), (filters, by, as_of)


def test_a_simulated_year_gives_the_snapshot_revenue_byte_for_byte() -> None:
    _, snapshot, columns = year()
    same_revenue(snapshot, columns, seed=5)


def test_revenue_and_cycle_asked_again_as_time_passes_age_as_the_snapshots_do() -> None:
    # Dashboards ask again at each as_of. What no later moment can change (revenue's flows,
    # the cycle's won deals and stage dwell) is kept per question; balances, ageing and
    # DSO move on with as_of, over nothing new and over payments and bookings arriving.
    records, snapshot, _ = year()
    columns = columns_from(records)  # its own: nothing kept from other tests' questions
    zone = ZoneInfo(TZ)
    moments = [datetime(2017, 12, 31, 23, 0, tzinfo=zone) + timedelta(days=days, seconds=s)
               for days in (0, 20, 45, 80, 200) for s in (0, 5)]
    moments += [datetime(2017, 7, 3, 9, 0, tzinfo=zone) + timedelta(hours=h)
                for h in range(0, 48, 6)]
    team = values(snapshot)["team"][0]
    asked = 0
    for filters in (Filters(), Filters(dims={"team": team}),
                    Filters(start=date(2017, 4, 1), end=date(2017, 6, 30))):
        for as_of in moments:
            for by in ("month", "product"):
                assert body(columnar_revenue.revenue(columns, filters, by, as_of)) == \
                    body(revenue.revenue(snapshot, filters, by, as_of)), (filters, by, as_of)
                asked += 1
            assert body(columnar_cycle.cycle(columns, filters, as_of)) == \
                body(cycle.cycle(snapshot, filters, as_of)), (filters, as_of)
    # (the flows were found again far fewer times than asked: the kept ones answered)
    assert len(_kept_of(columns, "revenue flows")) < asked / 2


def _kept_of(columns: Columns, what: str) -> Any:
    return derived._KEPT[columns][what][1]


def same_dimensions(snapshot: Snapshot, columns: Columns) -> None:
    known = values(snapshot)
    scopes = [None, Filters(), Filters(dims={"team": "nobody"}), Filters(dims={"rep": "nobody"}),
              *(Filters(dims={"rep": rep}) for rep in known["rep"][:3]),
              *(Filters(dims={"team": team}) for team in known["team"])]
    for within in scopes:
        assert body(columnar_dimensions.dimensions(columns, within)) == \
            body(dimensions.dimensions(snapshot, within)), within


def same_activities(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    for filters in filter_cases(snapshot, seed):
        for text in AS_OF:
            as_of = datetime.fromisoformat(text)
            assert body(columnar_activity.activities(columns, filters, as_of)) == \
                body(activity.activities(snapshot, filters, as_of)), (filters, as_of)


def test_a_simulated_year_gives_the_snapshot_activities_byte_for_byte() -> None:
    _, snapshot, columns = year()
    whole = columnar_activity.activities(columns, Filters(), datetime.fromisoformat(AS_OF[0]))
    assert whole["quotes_sent"] > 0 and whole["talk_minutes"] != "0"  # not empty
    assert whole["cadence"]["open_deals"] > whole["cadence"]["never_touched"]
    same_activities(snapshot, columns, seed=7)


def same_exports(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    """The streamed CSV and JSON, in chunks of a few sizes, are the bytes the API sent when
    it wrote the `Snapshot` export's rows whole."""
    for n, filters in enumerate(filter_cases(snapshot, seed)):
        deals = columnar_export.selected_deals(columns, filters)
        assert streamed(deals, (7, 100, None)[n % 3]) == \
            rendered(export.deal_rows(snapshot, filters)), filters


def test_a_simulated_year_gives_the_snapshot_export_byte_for_byte() -> None:
    _, snapshot, columns = year()
    rows = export.deal_rows(snapshot, Filters())
    assert len(columnar_export.selected_deals(columns, Filters())) == len(rows)
    assert any(row["closed_at"] for row in rows) and any(not row["closed_at"] for row in rows)
    same_exports(snapshot, columns, seed=8)


def same_leads(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    for filters in list(filter_cases(snapshot, seed, count=4))[::2]:
        for by in leads.GROUPINGS:
            for text in AS_OF:
                as_of = datetime.fromisoformat(text)
                for sla in (leads.DEFAULT_SLA_HOURS, 0.5, 72.0):
                    assert body(columnar_leads.leads(columns, filters, by, as_of, sla)) == \
                        body(leads.leads(snapshot, filters, by, as_of, sla)), \
                        (filters, by, as_of, sla)


def test_a_simulated_year_gives_the_snapshot_leads_byte_for_byte() -> None:
    _, snapshot, columns = year()
    whole = columnar_leads.leads(columns, Filters(), "source",
                                 datetime.fromisoformat(AS_OF[1]))["total"]
    assert whole["answered"] > 0 and whole["converted"] > 0  # what is compared is not empty
    same_leads(snapshot, columns, seed=6)


def test_a_simulated_year_gives_the_snapshot_dimensions_byte_for_byte() -> None:
    _, snapshot, columns = year()
    same_dimensions(snapshot, columns)


def test_a_simulated_year_gives_the_snapshot_targets_byte_for_byte() -> None:
    _, snapshot, columns = year()
    assert len(snapshot.records["target"]) > len(EXTRA)
    same_targets(snapshot, columns)


def test_a_simulated_year_gives_the_snapshot_leaderboards_byte_for_byte() -> None:
    _, snapshot, columns = year()
    assert len(snapshot.orders) > 50 and len(snapshot.records["rep"]) == 12
    mid_year = Window(None, None, datetime.fromisoformat(AS_OF[0]))
    whole = columnar_scores.leaderboard(columns, mid_year)["rows"]
    assert all(row["figures"]["collected"] != "0" for row in whole)  # what is compared is
    assert sum(row["figures"]["followed_up"] for row in whole) > 0  # not empty
    same_leaderboards(snapshot, columns, seed=1)


def test_a_simulated_year_gives_the_snapshot_rep_pages_byte_for_byte() -> None:
    _, snapshot, columns = year()
    same_rep_pages(snapshot, columns, seed=2)


def test_a_simulated_year_gives_the_snapshot_cycle_byte_for_byte() -> None:
    _, snapshot, columns = year()
    same_cycles(snapshot, columns, seed=3)


def test_hand_made_world_with_orders_payments_and_follow_ups_answers_the_same() -> None:
    records = fold(WORLD)
    snapshot, columns = Snapshot(records, TZ), columns_from(records, chunk=1)
    same_leaderboards(snapshot, columns, seed=4)
    same_rep_pages(snapshot, columns, seed=4)
    same_cycles(snapshot, columns, seed=4)
    same_revenue(snapshot, columns, seed=4)
    same_dimensions(snapshot, columns)
    same_leads(snapshot, columns, seed=4)
    same_activities(snapshot, columns, seed=4)
    same_exports(snapshot, columns, seed=4)


def test_targets_summing_beyond_int64_millionths_stay_exact() -> None:
    records = fold(simulated(days=120) + EXTRA)
    # 9.9e13 in millionths is past int64: the sums fall back to Python's integers.
    won = next(deal for deal in records["deal"].values() if deal.get("status") == "won")
    won["amount"] = "98765432109876.55"
    paid = next(order for order in records["order"].values() if order["payments"])
    paid["payments"][0][1] = "98765432109876.5"
    snapshot, columns = Snapshot(records, TZ), columns_from(records)
    assert any(row["actual"] == "98765432109876.55" or Decimal(row["actual"]) > 10 ** 13
               for row in column_targets(columns, datetime.fromisoformat(AS_OF[-1]),
                                         metric="won_value")["targets"])
    same_targets(snapshot, columns)


def test_records_changed_one_at_a_time_answer_the_same_at_every_checkpoint() -> None:
    # Orders gain payments and deals activities as they arrive: each change brings its tail.
    for index, records, columns in one_change_at_a_time(changes(simulated(days=120)), [5, 2]):
        snapshot = Snapshot(records, TZ)
        same_leaderboards(snapshot, columns, seed=index)
        same_targets(snapshot, columns)
        same_revenue(snapshot, columns, seed=index)
        same_dimensions(snapshot, columns)
        same_cycles(snapshot, columns, seed=index)
        same_leads(snapshot, columns, seed=index)
        same_activities(snapshot, columns, seed=index)
        same_exports(snapshot, columns, seed=index)
