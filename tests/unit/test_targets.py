"""Targets (docs/METRICS.md, "Targets"): hand-computed cases pinned on both the view and
the independent oracle, then the view against the oracle over a simulated year.

Times without offset are Asia/Shanghai local time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from projections.columnar_targets import column_targets
from projections.snapshot import Snapshot
from projections.targets import targets as view_targets
from tests.builders import ev
from tests.history import columns_of, simulated, snapshot_of
from tests.integration.test_event_path import comparable
from tests.oracles import targets as oracle

Key = tuple[str, str | None, str, str]



def joined(rep: str, team: str) -> dict[str, Any]:
    return ev("rep.joined", "2017-01-01T09:00:00", rep_id=rep, name=rep, team_id=team)


def target(scope: str, scope_id: str | None, period: str, metric: str, value: str,
           at: str = "2017-01-01T09:00:00") -> dict[str, Any]:
    data: dict[str, Any] = {"scope": scope, "period": period, "metric": metric, "value": value}
    if scope_id:
        data["scope_id"] = scope_id
    return ev("target.set", at, **data)


def won_deal(deal: str, owner: str, created: str, won: str, amount: str,
             customer: str | None = None) -> list[dict[str, Any]]:
    extra = {"customer_id": customer} if customer else {}
    return [ev("deal.created", created, deal_id=deal, owner_id=owner, amount=amount,
               stage="prospecting", **extra),
            ev("deal.won", won, deal_id=deal)]


def _number(value: Any) -> Any:
    return Decimal(value) if isinstance(value, str) else value


def by_view(events: list[dict[str, Any]], as_of: str, **filters: str) -> list[dict[str, Any]]:
    return view_targets(snapshot_of(events), datetime.fromisoformat(as_of),
                        **filters)["targets"]  # type: ignore[arg-type]


def by_oracle(events: list[dict[str, Any]], as_of: str, **filters: str) -> list[dict[str, Any]]:
    return oracle.targets(events, as_of, filters=filters)["targets"]


def by_columns(events: list[dict[str, Any]], as_of: str, **filters: str
               ) -> list[dict[str, Any]]:
    return column_targets(columns_of(events), datetime.fromisoformat(as_of),
                          **filters)["targets"]  # type: ignore[no-any-return]


IMPLEMENTATIONS = pytest.mark.parametrize("compute", [by_view, by_columns, by_oracle],
                                          ids=["view", "columns", "oracle"])
Compute = Callable[..., list[dict[str, Any]]]


def exact(row: dict[str, Any]) -> dict[str, Any]:
    """Amounts as Decimals (they are strings in the view's answer)."""
    return {k: _number(v) if k in ("target", "actual", "pace", "expected_at_as_of") else v
            for k, v in row.items()}


def table(compute: Compute, events: list[dict[str, Any]], as_of: str,
          **filters: str) -> dict[Key, dict[str, Any]]:
    return {(r["scope"], r["scope_id"], r["period"], r["metric"]): exact(r)
            for r in compute(events, as_of, **filters)}


ORG = [joined("r1", "T1"), joined("r2", "T1"), joined("r3", "T2"),
       # r2 moves mid-March: March targets still count in T1, where r2 was on March 1
       ev("rep.moved", "2017-03-15T09:00:00", rep_id="r2", team_id="T2")]


@IMPLEMENTATIONS
def test_team_and_company_targets_roll_up_from_reps_in_the_team_at_the_period_start(
        compute: Compute) -> None:
    events = [*ORG, target("rep", "r1", "2017-03", "won_value", "100"),
              target("rep", "r2", "2017-03", "won_value", "200"),
              target("rep", "r3", "2017-03", "won_value", "50"),
              target("rep", "r2", "2017-04", "won_value", "70")]
    rows = table(compute, events, "2017-03-10T00:00:00+08:00")
    assert rows["team", "T1", "2017-03", "won_value"]["target"] == Decimal(300)
    assert rows["team", "T2", "2017-03", "won_value"]["target"] == Decimal(50)
    assert rows["company", None, "2017-03", "won_value"]["target"] == Decimal(350)
    assert rows["team", "T2", "2017-04", "won_value"]["target"] == Decimal(70)  # moved by then
    assert ("team", "T1", "2017-04", "won_value") not in rows
    assert all(r["derived"] == (scope != "rep") for (scope, *_), r in rows.items())


@IMPLEMENTATIONS
def test_a_target_set_directly_is_not_replaced_by_the_roll_up(compute: Compute) -> None:
    events = [*ORG, target("rep", "r1", "2017-03", "won_value", "100"),
              target("rep", "r3", "2017-03", "won_value", "50"),
              target("team", "T2", "2017-03", "won_value", "80"),
              target("team", "T2", "2017-03", "won_value", "90")]  # the latest value counts
    rows = table(compute, events, "2017-03-10T00:00:00+08:00")
    assert rows["team", "T2", "2017-03", "won_value"]["target"] == Decimal(90)
    assert rows["team", "T2", "2017-03", "won_value"]["derived"] is False
    assert rows["company", None, "2017-03", "won_value"]["target"] == Decimal(190)  # 100 + 90


MARCH = [*ORG, target("rep", "r1", "2017-03", "won_value", "3100"),
         *won_deal("D1", "r1", "2017-02-20T10:00:00", "2017-03-05T10:00:00", "1000"),
         *won_deal("D2", "r1", "2017-03-01T10:00:00", "2017-03-20T10:00:00", "500")]


@IMPLEMENTATIONS
def test_before_the_period_starts_there_is_no_pace(compute: Compute) -> None:
    row = table(compute, MARCH, "2017-02-25T12:00:00+08:00")["rep", "r1", "2017-03", "won_value"]
    assert (row["actual"], row["pace"], row["on_pace"]) == (Decimal(0), None, None)
    assert (row["elapsed_share"], row["expected_at_as_of"]) == (0, Decimal("0.00"))


@IMPLEMENTATIONS
def test_during_the_period_pace_extrapolates_the_run_rate_to_the_period_end(
        compute: Compute) -> None:
    # 10 of March's 31 days have passed; only D1 (1000) is won by then
    row = table(compute, MARCH, "2017-03-11T00:00:00+08:00")["rep", "r1", "2017-03", "won_value"]
    assert row["actual"] == Decimal(1000)
    assert row["attainment"] == pytest.approx(1000 / 3100)
    assert row["elapsed_share"] == pytest.approx(10 / 31)
    assert row["pace"] == Decimal("3100.00")  # 1000 / (10/31)
    assert row["expected_at_as_of"] == Decimal("1000.00")  # 3100 x 10/31
    assert row["on_pace"] is True


@IMPLEMENTATIONS
def test_after_the_period_pace_is_the_actual(compute: Compute) -> None:
    row = table(compute, MARCH, "2017-04-05T12:00:00+08:00")["rep", "r1", "2017-03", "won_value"]
    assert row["actual"] == row["pace"] == Decimal(1500)
    assert row["attainment"] == pytest.approx(1500 / 3100)
    assert (row["elapsed_share"], row["on_pace"]) == (1, False)


@IMPLEMENTATIONS
def test_each_metric_is_attributed_like_the_other_views(compute: Compute) -> None:
    events = [
        *ORG,
        *[target(scope, sid, "2017-03", metric, "10") for scope, sid in
          (("rep", "r2"), ("team", "T1"), ("team", "T2"))
          for metric in ("activities", "new_leads", "won_deals", "collected")],
        ev("lead.created", "2017-03-02T10:00:00", lead_id="L1", owner_id="r2"),
        ev("lead.created", "2017-03-16T10:00:00", lead_id="L2", owner_id="r2"),  # r2 in T2
        ev("customer.created", "2017-03-01T09:00:00", customer_id="C1"),
        *won_deal("D1", "r2", "2017-03-01T10:00:00", "2017-03-10T10:00:00", "800", "C1"),
        ev("activity.logged", "2017-03-03T10:00:00", activity_id="A1", kind="call",
           rep_id="r2", lead_id="L1"),
        ev("activity.logged", "2017-03-20T10:00:00", activity_id="A2", kind="call",
           rep_id="r2", lead_id="L2"),
        # booked in T1 (r2's team then): collected counts for T1, in the month it is received
        ev("order.booked", "2017-03-12T10:00:00", order_id="O1", customer_id="C1",
           amount="800", deal_id="D1"),
        ev("payment.received", "2017-03-25T10:00:00", payment_id="P1", order_id="O1",
           amount="300"),
        ev("payment.received", "2017-04-02T10:00:00", payment_id="P2", order_id="O1",
           amount="500"),
        ev("order.booked", "2017-03-12T11:00:00", order_id="O2", customer_id="C1",
           amount="40"),  # no deal: the company's only
        ev("payment.received", "2017-03-26T10:00:00", payment_id="P3", order_id="O2",
           amount="40"),
    ]
    rows = table(compute, events, "2017-12-31T18:00:00+08:00")

    def actual(scope: str, sid: str | None, metric: str) -> Any:
        return rows[scope, sid, "2017-03", metric]["actual"]
    assert [actual("rep", "r2", m) for m in ("activities", "new_leads", "won_deals")] == [2, 2, 1]
    assert [actual("team", "T1", m) for m in ("activities", "new_leads", "won_deals")] == \
        [1, 1, 1]
    assert [actual("team", "T2", m) for m in ("activities", "new_leads", "won_deals")] == \
        [1, 1, 0]
    assert actual("rep", "r2", "collected") == Decimal(300)
    assert actual("team", "T1", "collected") == Decimal(300)
    assert actual("team", "T2", "collected") == Decimal(0)
    assert actual("company", None, "collected") == Decimal(340)


@IMPLEMENTATIONS
def test_filters_choose_scope_period_within_and_a_teams_reps(compute: Compute) -> None:
    events = [*ORG, target("rep", "r1", "2017-03", "won_value", "100"),
              target("rep", "r3", "2017-03", "won_value", "50"),
              target("rep", "r1", "2017-05", "activities", "9"),
              target("company", None, "2017", "won_value", "999")]
    at = "2017-03-10T00:00:00+08:00"
    assert set(table(compute, events, at, team="T1")) == {
        ("team", "T1", "2017-03", "won_value"), ("rep", "r1", "2017-03", "won_value"),
        ("team", "T1", "2017-05", "activities"), ("rep", "r1", "2017-05", "activities")}
    assert set(table(compute, events, at, period="2017-Q1", scope="company")) == {
        ("company", None, "2017-03", "won_value")}
    assert set(table(compute, events, at, period="2017", metric="activities", rep="r1")) == {
        ("rep", "r1", "2017-05", "activities")}


# --------------------------------------------------------------------------- a simulated year

EXTRA = [target("rep", f"R-{n:03d}", period, metric, value, "2017-01-01T09:00:00+08:00")
         for n in (1, 5, 9) for period in ("2017-02", "2017-Q3", "2017")
         for metric, value in (("collected", "90000"), ("won_deals", "4"), ("new_leads", "30"))]


@pytest.fixture(scope="module")
def year() -> list[dict[str, Any]]:
    # the simulator sets no collected / won_deals / rep lead targets: add some
    return simulated() + EXTRA


@pytest.fixture(scope="module")
def year_snapshot(year: list[dict[str, Any]]) -> Snapshot:
    return snapshot_of(year)


@pytest.mark.parametrize(("as_of", "filters"), [
    ("2017-03-31T23:59:59+08:00", {}),
    ("2017-06-15T12:00:00+08:00", {}),
    ("2017-06-15T12:00:00+08:00", {"team": "T-2"}),
    ("2017-06-15T12:00:00+08:00", {"period": "2017-Q3", "metric": "collected"}),
    ("2017-12-31T18:00:00+08:00", {"scope": "team"}),
    ("2017-12-31T18:00:00+08:00", {"rep": "R-005"}),
], ids=str)
@pytest.mark.parametrize("path", ["snapshot", "columns"])
def test_view_equals_the_independent_computation_over_a_simulated_year(
        year: list[dict[str, Any]], year_snapshot: Snapshot, as_of: str,
        filters: dict[str, str], path: str) -> None:
    view = (view_targets(year_snapshot, datetime.fromisoformat(as_of),
                         **filters)["targets"]  # type: ignore[arg-type]
            if path == "snapshot" else by_columns(year, as_of, **filters))
    independent = by_oracle(year, as_of, **filters)
    assert view, "every filter here selects some targets"
    assert comparable([exact(r) for r in view]) == comparable([exact(r) for r in independent])


@IMPLEMENTATIONS
def test_standing_keeps_the_targets_whose_period_stands_so_at_as_of(compute: Compute) -> None:
    # On 10 March: February is over, March under way, Q2 and April not begun; the year of
    # 2017 is under way too. A period ending at as_of's instant is over.
    events = [*ORG, *(target("rep", "r1", period, "won_deals", "3")
                      for period in ("2017-02", "2017-03", "2017-04", "2017-Q2", "2017"))]
    asked = "2017-03-10T00:00:00+08:00"

    def periods(**filters: str) -> set[str]:
        return {period for (scope, _, period, _) in table(compute, events, asked, **filters)
                if scope == "rep"}

    assert periods(standing="over") == {"2017-02"}
    assert periods(standing="under_way") == {"2017-03", "2017"}
    assert periods(standing="not_begun") == {"2017-04", "2017-Q2"}
    assert periods() == {"2017-02", "2017-03", "2017-04", "2017-Q2", "2017"}
    at_march_end = {period for (scope, _, period, _) in table(
        compute, events, "2017-04-01T00:00:00+08:00", standing="over") if scope == "rep"}
    assert at_march_end == {"2017-02", "2017-03"}
