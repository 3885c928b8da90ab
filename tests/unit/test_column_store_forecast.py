"""The forecast and its accuracy answered from the column store are byte for byte the
`Snapshot` views' answers at a fixed `as_of`, for every parameter their routes take
(filters on every dimension, `from`/`to`, periods), whether the records were loaded whole
or changed one at a time as the projector applies them (deals move, change amount, owner
and expected close)."""

from __future__ import annotations

from datetime import datetime

from projections import columnar_forecast, forecast
from projections.columnar import Columns
from projections.facts import Record, apply
from projections.snapshot import Filters, Snapshot
from tests.history import TZ, changes, columns_from, one_change_at_a_time, simulated
from tests.unit.test_column_store_views import AS_OF, body, filter_cases, values, year


def same_forecasts(snapshot: Snapshot, columns: Columns, seed: int) -> None:
    # One stage history for every question at this state (forecasts and accuracies alike),
    # as the API shares it.
    shared = columnar_forecast.StageHistory(columns)
    for index, filters in enumerate(filter_cases(snapshot, seed, count=4)):
        for text in AS_OF:
            as_of = datetime.fromisoformat(text)
            expected = body(forecast.forecast(snapshot, filters, as_of))
            assert body(columnar_forecast.forecast(columns, filters, as_of)) == expected, \
                (filters, as_of)
            assert body(columnar_forecast.forecast(columns, filters, as_of, shared)) == \
                expected, (filters, as_of)
        period = ("month", "quarter")[index % 2]
        as_of = datetime.fromisoformat(AS_OF[index % len(AS_OF)])
        expected = body(forecast.accuracy(snapshot, filters, as_of, period))
        assert body(columnar_forecast.accuracy(columns, filters, as_of, period)) == \
            expected, (filters, period)
        assert body(columnar_forecast.accuracy(columns, filters, as_of, period, shared)) == \
            expected, (filters, period)


def test_a_simulated_year_gives_the_snapshot_forecast_byte_for_byte() -> None:
    _, snapshot, columns = year()
    mid_year = datetime.fromisoformat(AS_OF[0])
    assert columnar_forecast.forecast(columns, Filters(), mid_year)["open_deals"] > 10
    assert columnar_forecast.accuracy(columns, Filters(), mid_year, "month")["periods"]
    for period in ("month", "quarter"):
        assert body(columnar_forecast.accuracy(columns, Filters(), mid_year, period)) == \
            body(forecast.accuracy(snapshot, Filters(), mid_year, period))
    same_forecasts(snapshot, columns, seed=7)


def test_records_changed_one_at_a_time_answer_the_same_at_every_checkpoint() -> None:
    for index, records, columns in one_change_at_a_time(changes(simulated(days=120)), [3]):
        same_forecasts(Snapshot(records, TZ), columns, seed=index)


def test_a_deal_changed_thousands_of_times_keeps_only_its_latest_history() -> None:
    # Every change appends the deal's whole history again: the garbage is dropped past
    # twice the live rows, and what the deal was at each moment stays the same.
    stream = changes(simulated(days=60))
    records: dict[str, dict[str, Record]] = {}
    for change in stream:
        kind = records.setdefault(change.kind, {})
        if (updated := apply(kind.get(change.key), change)) is not None:
            kind[change.key] = updated
    columns = columns_from(records)
    history = columns.deal_history
    deal = next(iter(records["deal"].values()))
    for _ in range(3000):
        columns.put("deal", deal)
    assert history.tables["stage"].size < 2 * int(history.count["stage"].sum()) + 4096 + 100
    snapshot = Snapshot(records, TZ)
    same_forecasts(snapshot, columns, seed=3)



def test_deals_known_only_from_their_orders_forecast_nothing_for_any_team() -> None:
    # Orders and activities name deals whose records have not come (a feed sends them
    # first): their rows exist without any history, so the owner table is empty, and a
    # manager's team filter read it at -1 (a 500 before).
    records, whole, _ = year()
    early = {**records, "deal": {}}
    snapshot, columns = Snapshot(early, TZ), columns_from(early)
    assert columns.deals.size > 0
    team = values(whole)["team"][0]
    for text in AS_OF:
        as_of = datetime.fromisoformat(text)
        for filters in (Filters(), Filters(dims={"team": team}), Filters(dims={"rep": "R-1"})):
            answer = columnar_forecast.forecast(columns, filters, as_of)
            assert answer["open_deals"] == 0
            assert body(answer) == body(forecast.forecast(snapshot, filters, as_of)), filters


def test_accuracy_at_its_edges_answers_as_the_snapshot() -> None:
    # Amounts beyond int64 millionths, a deal without an expected close (due by its stage's
    # median), months with nothing open or won, owner filters read at each moment, and an
    # empty store: the column answer is still the Snapshot's byte for byte.
    from tests.history import columns_of, snapshot_of
    from tests.unit.test_forecast import closed_history, created, moved, won

    events = [
        *closed_history("proposal", wins=15, losses=6),
        created("A", "2017-02-03T09:00:00", stage="proposal", amount="12345678901234.5"),
        created("B", "2017-02-10T09:00:00", stage="negotiation", amount="99999999999999",
                owner="r2", expected_close="2017-03-15"),
        created("C", "2017-02-11T09:00:00", stage="prospecting", amount="10.25"),
        moved("C", "proposal", "2017-02-20T09:00:00"),
        won("A", "2017-03-05T09:00:00"),
        won("B", "2017-03-20T09:00:00", amount="10000000000000.01"),
        won("C", "2017-06-02T09:00:00"),
    ]
    snapshot, columns = snapshot_of(events), columns_of(events)
    as_of = datetime.fromisoformat("2017-08-01T00:00:00+08:00")
    for filters in (Filters(), Filters(dims={"rep": "r2"}), Filters(dims={"rep": "nobody"}),
                    Filters(dims={"team": "nobody"}),
                    Filters(start=datetime(2017, 2, 5).date())):
        for period in ("month", "quarter"):
            answer = columnar_forecast.accuracy(columns, filters, as_of, period)
            assert body(answer) == body(forecast.accuracy(snapshot, filters, as_of, period))
    assert columnar_forecast.accuracy(columns, Filters(), as_of, "month")["periods"][2][
        "actual"] == "22345678901234.51"
    empty = snapshot_of([]), columns_of([])
    assert body(columnar_forecast.accuracy(empty[1], Filters(), as_of, "month")) == \
        body(forecast.accuracy(empty[0], Filters(), as_of, "month"))
