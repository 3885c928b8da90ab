"""The pandas oracle against hand-computed expectations (docs/METRICS.md).

Times without offset are Asia/Shanghai local time. Every expected number is
worked out in the test by hand, never by calling the oracle another way.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests import oracle
from tests.builders import ev

STAGES = ["prospecting", "qualification", "proposal", "negotiation"]



def joined(rep: str, at: str = "2017-01-01T09:00:00", **data: object) -> dict:
    data.setdefault("team_id", "north")
    return ev("rep.joined", at, rep_id=rep, name=rep, **data)


def created(deal: str, at: str, owner: str = "r1", **data: object) -> dict:
    return ev("deal.created", at, deal_id=deal, owner_id=owner, **data)


def moved(deal: str, stage: str, at: str) -> dict:
    return ev("deal.stage_changed", at, deal_id=deal, stage=stage)


def funnel(events: list[dict], **kw: object) -> dict:
    return oracle.funnel(events, stages=STAGES, **kw)


def stage(result: dict, name: str) -> dict:
    return next(r for r in result["stages"] if r["stage"] == name)


def rows(events: list[dict], by: str, **kw: object) -> dict:
    """Breakdown rows by key; also checks the documented order (sorted, null last)."""
    result = oracle.breakdown(events, by=by, stages=STAGES, **kw)
    assert result["by"] == by
    keys = [r["key"] for r in result["rows"]]
    named = [k for k in keys if k is not None]
    assert keys == sorted(named) + [None] * (len(keys) - len(named))
    return {r["key"]: r for r in result["rows"]}


# --------------------------------------------------------------------------- funnel


def test_skip_counts_as_advancement_of_the_stage_left() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T10:00:00"),  # no stage: the first one
        moved("D1", "proposal", "2017-03-03T10:00:00"),  # skips qualification
    ]
    f = funnel(events)

    assert stage(f, "prospecting") == {
        "stage": "prospecting", "open_deals": 0, "open_amount": Decimal(0),
        "entered": 1, "advanced": 1, "conversion": 1.0,
        "dwell_days_median": 2.0, "dwell_days_p90": 2.0,
    }
    skipped = stage(f, "qualification")
    assert (skipped["entered"], skipped["advanced"], skipped["conversion"]) == (0, 0, None)
    assert skipped["dwell_days_median"] is None
    proposal = stage(f, "proposal")
    assert (proposal["open_deals"], proposal["entered"], proposal["advanced"]) == (1, 1, 0)
    assert proposal["conversion"] == 0.0
    assert proposal["dwell_days_median"] is None  # still there: has not left it


def test_regression_is_not_advancement_but_the_earlier_advance_still_counts() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T00:00:00"),
        moved("D1", "qualification", "2017-03-02T00:00:00"),
        moved("D1", "prospecting", "2017-03-02T12:00:00"),  # back again
    ]
    f = funnel(events)

    prospecting, qualification = stage(f, "prospecting"), stage(f, "qualification")
    assert (prospecting["entered"], prospecting["advanced"]) == (1, 1)
    assert (qualification["entered"], qualification["advanced"]) == (1, 0)
    assert qualification["conversion"] == 0.0
    assert qualification["dwell_days_median"] == 0.5
    # sitting in prospecting again: it has not left the stage, so no dwell yet
    assert prospecting["dwell_days_median"] is None
    assert prospecting["open_deals"] == 1


def test_won_lost_and_open_deals_make_the_totals() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T10:00:00", amount="100.10"),
        created("D2", "2017-03-01T10:00:00", amount=50),
        created("D3", "2017-03-01T10:00:00", amount="30.5", stage="qualification"),
        created("D4", "2017-03-01T10:00:00", amount="10", stage="qualification"),
        ev("quote.sent", "2017-03-02T10:00:00", deal_id="D3", quote_id="Q1", amount="999"),
        ev("deal.amount_changed", "2017-03-02T10:00:00", deal_id="D4", amount="15.75"),
        ev("deal.lost", "2017-03-02T22:00:00", deal_id="D2", reason="price"),
        ev("deal.won", "2017-03-04T10:00:00", deal_id="D1", amount="120.25"),  # final value
    ]
    f = funnel(events)

    assert (f["won"], f["lost"], f["win_rate"]) == (1, 1, 0.5)
    assert f["won_value"] == Decimal("120.25")
    qualification = stage(f, "qualification")
    assert qualification["open_deals"] == 2
    assert qualification["open_amount"] == Decimal("46.25")  # 30.5 + 15.75; quotes don't count
    prospecting = stage(f, "prospecting")
    # D1 and D2 entered; winning is advancement, losing is not
    assert (prospecting["entered"], prospecting["advanced"], prospecting["conversion"]) == (
        2, 1, 0.5)
    # both left prospecting by closing: D2 after 1.5 days, D1 after 3
    assert prospecting["dwell_days_median"] == pytest.approx(2.25)
    assert prospecting["dwell_days_p90"] == pytest.approx(1.5 + 0.9 * (3 - 1.5))


def test_amount_is_zero_when_never_given() -> None:
    f = funnel([joined("r1"), created("D1", "2017-03-01T10:00:00")])
    assert stage(f, "prospecting")["open_amount"] == Decimal(0)


def test_stage_change_to_the_current_stage_changes_nothing() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T00:00:00"),
        moved("D1", "prospecting", "2017-03-02T00:00:00"),  # already there
        moved("D1", "qualification", "2017-03-04T00:00:00"),
        moved("D1", "qualification", "2017-03-05T00:00:00"),  # already there
        ev("deal.lost", "2017-03-06T00:00:00", deal_id="D1"),
    ]
    f = funnel(events)

    prospecting, qualification = stage(f, "prospecting"), stage(f, "qualification")
    assert (prospecting["entered"], prospecting["advanced"]) == (1, 1)
    assert prospecting["dwell_days_median"] == 3.0  # from creation, not from the no-op change
    assert (qualification["entered"], qualification["advanced"]) == (1, 0)
    assert qualification["dwell_days_median"] == 2.0  # until the close


def test_dwell_sums_all_visits_of_a_stage() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T00:00:00"),
        moved("D1", "qualification", "2017-03-02T00:00:00"),  # prospecting: 1 day
        moved("D1", "prospecting", "2017-03-04T00:00:00"),  # qualification: 2 days
        moved("D1", "qualification", "2017-03-07T00:00:00"),  # prospecting: 3 more
        moved("D1", "proposal", "2017-03-07T12:00:00"),  # qualification: 0.5 more
        ev("deal.won", "2017-03-08T12:00:00", deal_id="D1"),  # proposal: 1 day
    ]
    f = funnel(events)

    assert stage(f, "prospecting")["dwell_days_median"] == 4.0
    assert stage(f, "qualification")["dwell_days_median"] == 2.5
    assert stage(f, "proposal")["dwell_days_median"] == 1.0
    # a deal is entered once however often it visits
    assert [stage(f, s)["entered"] for s in STAGES] == [1, 1, 1, 0]
    assert [stage(f, s)["advanced"] for s in STAGES] == [1, 1, 1, 0]


def test_dwell_quantiles_interpolate_linearly_over_deals_that_left() -> None:
    events = [joined("r1")]
    for i, days in enumerate([1, 2, 3, 4, 10]):
        events += [
            created(f"D{i}", "2017-03-01T00:00:00"),
            moved(f"D{i}", "qualification", f"2017-03-{1 + days:02d}T00:00:00"),
        ]
    events.append(created("OPEN", "2017-03-01T00:00:00"))  # still in prospecting
    prospecting = stage(funnel(events), "prospecting")

    assert (prospecting["entered"], prospecting["advanced"]) == (6, 5)
    assert prospecting["dwell_days_median"] == 3.0
    # position 0.9 * (5 - 1) = 3.6 between 4 and 10
    assert prospecting["dwell_days_p90"] == pytest.approx(4 + 0.6 * (10 - 4))


def test_funnel_dimension_filter_never_matches_null() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-03-01T10:00:00", product="crm"),
        created("D2", "2017-03-01T10:00:00"),  # no product
        created("D3", "2017-03-01T10:00:00", product="api"),
    ]
    assert stage(funnel(events, filters={"product": "crm"}), "prospecting")["entered"] == 1
    # a filter given as None is no filter (an absent query parameter)
    assert stage(funnel(events, filters={"product": None}), "prospecting")["entered"] == 3


def test_date_filters_are_inclusive_local_dates() -> None:
    # amounts are powers of two so the sum tells exactly which deals were selected
    events = [
        joined("r1"),
        created("D1", "2017-02-28T23:59:59", amount=1),  # Feb 28 local
        created("D2", "2017-03-01T00:00:00", amount=2),  # Mar 1 local
        created("D3", "2017-03-31T23:30:00", amount=4),  # Mar 31 local
        created("D4", "2017-04-01T00:30:00", amount=8),  # Apr 1 local
        created("D5", "2017-03-31T16:30:00Z", amount=16),  # Apr 1 00:30 in Shanghai
        created("D6", "2017-02-28T16:30:00+00:00", amount=32),  # Mar 1 00:30 in Shanghai
    ]
    march = {"from": date(2017, 3, 1), "to": date(2017, 3, 31)}

    f = funnel(events, filters=march)
    assert stage(f, "prospecting")["open_amount"] == 2 + 4 + 32
    # ISO strings work like dates
    f = funnel(events, filters={"from": "2017-03-01", "to": "2017-03-31"})
    assert stage(f, "prospecting")["open_amount"] == 2 + 4 + 32
    # another tenant zone: the same instants fall on other dates, offset-less times move
    f = funnel(events, tz="UTC", filters=march)
    assert stage(f, "prospecting")["open_amount"] == 2 + 4 + 16


def test_duplicate_event_ids_count_once() -> None:
    deal = created("D1", "2017-03-01T10:00:00", amount="5")
    call = ev("activity.logged", "2017-03-01T11:00:00", activity_id="A1", kind="call",
              rep_id="r1", deal_id="D1")
    events = [joined("r1"), deal, call, deal, call]

    f = funnel(events)
    assert stage(f, "prospecting")["open_amount"] == Decimal("5")
    row = rows(events, "rep")["r1"]
    assert (row["deals"], row["activities"]) == (1, 1)


# --------------------------------------------------------------------------- breakdown


def test_team_is_taken_at_close_time_and_current_for_open_deals() -> None:
    events = [
        joined("r1", "2017-01-01T09:00:00", team_id="north", manager_id="m1", region="east"),
        created("D1", "2017-02-01T00:00:00", amount="100"),
        created("D2", "2017-02-15T00:00:00", amount="200"),
        created("D3", "2017-02-20T00:00:00", amount="300"),
        created("D4", "2017-02-20T00:00:00", amount="400"),
        ev("deal.won", "2017-03-01T00:00:00", deal_id="D1"),
        ev("deal.lost", "2017-03-05T00:00:00", deal_id="D4"),
        # manager and region omitted: kept
        ev("rep.moved", "2017-03-10T00:00:00", rep_id="r1", team_id="south"),
        ev("deal.won", "2017-03-20T00:00:00", deal_id="D2"),
        # D3 stays open: the owner's current team
    ]
    by_team = rows(events, "team")

    assert list(by_team) == ["north", "south"]
    assert by_team["north"] == {
        "key": "north", "deals": 2, "open": 0, "won": 1, "lost": 1, "win_rate": 0.5,
        "won_value": Decimal("100"), "avg_won_value": Decimal("100.00"),
        "cycle_days_mean": 28.0, "cycle_days_median": 28.0,  # Feb 1 -> Mar 1
        "activities": 0, "leads": 0, "lead_conversion": None,
    }
    south = by_team["south"]
    assert (south["deals"], south["open"], south["won"], south["lost"]) == (2, 1, 1, 0)
    assert south["win_rate"] == 1.0
    assert south["won_value"] == Decimal("200")
    assert south["cycle_days_mean"] == 33.0  # Feb 15 -> Mar 20
    # the move kept manager and region
    assert rows(events, "manager")["m1"]["deals"] == 4
    assert rows(events, "region")["east"]["deals"] == 4
    # a team filter selects by the same attribution
    assert stage(funnel(events, filters={"team": "north"}), "prospecting")["entered"] == 2


def test_activities_are_attributed_to_the_reps_team_when_they_happened() -> None:
    def call(activity: str, at: str, rep: str = "r1") -> dict:
        return ev("activity.logged", at, activity_id=activity, kind="call", rep_id=rep,
                  customer_id="C1")

    events = [
        joined("r1", "2017-01-01T09:00:00", team_id="north"),
        call("A1", "2017-03-09T23:00:00"),
        ev("rep.moved", "2017-03-10T00:00:00", rep_id="r1", team_id="south"),
        call("A2", "2017-03-10T00:00:00"),  # same instant as the move: the move applies
        call("A3", "2017-03-11T00:00:00"),
        call("A4", "2017-03-01T00:00:00", rep="r2"),  # before r2 joined: the first entry
        joined("r2", "2017-03-05T00:00:00", team_id="west"),
        call("A5", "2017-03-01T00:00:00", rep="ghost"),  # never joined: no team
        ev("rep.moved", "2017-03-20T00:00:00", rep_id="r2", team_id="west", manager_id="m2"),
        call("A6", "2017-03-21T00:00:00", rep="r2"),
    ]
    by_team = rows(events, "team")

    assert {k: r["activities"] for k, r in by_team.items()} == {
        "north": 1, "south": 2, "west": 2, None: 1}
    # A4 takes r2's whole first entry, manager (none yet) included
    assert {k: r["activities"] for k, r in rows(events, "manager").items()} == {
        "m2": 1, None: 5}
    # groups with activities only: no deals, no rates
    assert by_team["north"] == {
        "key": "north", "deals": 0, "open": 0, "won": 0, "lost": 0, "win_rate": None,
        "won_value": Decimal(0), "avg_won_value": None, "cycle_days_mean": None,
        "cycle_days_median": None, "activities": 1, "leads": 0, "lead_conversion": None,
    }


def test_deal_without_source_inherits_its_leads_source() -> None:
    events = [
        joined("r1"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L1", source="web", owner_id="r1"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L2", source="fair", owner_id="r1"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L3", source="web", owner_id="r1"),
        created("D1", "2017-03-02T09:00:00"),  # no source, no lead_id
        ev("lead.converted", "2017-03-02T09:00:00", lead_id="L1", deal_id="D1"),
        created("D2", "2017-03-02T09:00:00", lead_id="L3", source="referral"),  # own source
        ev("lead.converted", "2017-03-02T09:00:00", lead_id="L3", deal_id="D2"),
        ev("activity.logged", "2017-03-01T10:00:00", activity_id="A1", kind="call",
           rep_id="r1", lead_id="L2"),  # an activity on a lead has the lead's source
    ]
    by_source = rows(events, "source")

    assert list(by_source) == ["fair", "referral", "web"]
    fair, referral, web = by_source["fair"], by_source["referral"], by_source["web"]
    assert (fair["deals"], fair["leads"], fair["lead_conversion"], fair["activities"]) == (
        0, 1, 0.0, 1)
    assert (referral["deals"], referral["leads"], referral["lead_conversion"]) == (1, 0, None)
    assert (web["deals"], web["leads"], web["lead_conversion"]) == (1, 2, 1.0)
    assert stage(funnel(events, filters={"source": "web"}), "prospecting")["entered"] == 1


def test_lead_takes_product_and_segment_of_the_deal_it_converted_into() -> None:
    events = [
        joined("r1"),
        ev("customer.created", "2017-03-01T08:00:00", customer_id="C1", segment="smb"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L1", owner_id="r1"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L2", owner_id="r1"),  # unconverted
        created("D1", "2017-03-02T09:00:00", customer_id="C1", product="crm"),
        created("D2", "2017-03-02T09:00:00", customer_id="C9"),  # customer never created
        ev("lead.converted", "2017-03-02T09:00:00", lead_id="L1", deal_id="D1"),
        ev("activity.logged", "2017-03-03T10:00:00", activity_id="A1", kind="visit",
           rep_id="r1", deal_id="D1"),
        ev("activity.logged", "2017-03-03T10:00:00", activity_id="A2", kind="call",
           rep_id="r1", customer_id="C1"),  # customer activity: segment, but no product
    ]
    by_product = rows(events, "product")
    assert {k: (r["deals"], r["leads"], r["activities"]) for k, r in by_product.items()} == {
        "crm": (1, 1, 1), None: (1, 1, 1)}
    assert by_product["crm"]["lead_conversion"] == 1.0
    assert by_product[None]["lead_conversion"] == 0.0

    by_segment = rows(events, "segment")
    assert {k: (r["deals"], r["leads"], r["activities"]) for k, r in by_segment.items()} == {
        "smb": (1, 1, 2), None: (1, 1, 0)}


def test_rep_is_the_current_owner_of_deals_and_leads() -> None:
    events = [
        joined("r1"),
        joined("r2", team_id="south"),
        created("D1", "2017-03-01T09:00:00", owner="r1"),
        ev("deal.owner_changed", "2017-03-02T09:00:00", deal_id="D1", owner_id="r2"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L1", owner_id="r1"),
        ev("lead.assigned", "2017-03-02T09:00:00", lead_id="L1", owner_id="r2"),
        ev("activity.logged", "2017-03-03T09:00:00", activity_id="A1", kind="email",
           rep_id="r1", deal_id="D1"),  # an activity stays with whoever did it
    ]
    by_rep = rows(events, "rep")
    assert {k: (r["deals"], r["leads"], r["activities"]) for k, r in by_rep.items()} == {
        "r1": (0, 0, 1), "r2": (1, 1, 0)}


def test_lead_region_falls_back_to_its_owners_region() -> None:
    events = [
        joined("r1", region="east"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L1", owner_id="r1",
           region="north-china"),
        ev("lead.created", "2017-03-01T09:00:00", lead_id="L2", owner_id="r1"),
        created("D1", "2017-03-02T09:00:00"),
    ]
    by_region = rows(events, "region")
    assert {k: (r["deals"], r["leads"]) for k, r in by_region.items()} == {
        "east": (1, 1), "north-china": (0, 1)}


def test_avg_won_value_rounds_half_even_and_cycle_is_created_to_won() -> None:
    events = [joined("r1"), joined("r2")]
    for deal, owner, amount, won_at in [
        ("D1", "r1", "0.01", "2017-03-02T00:00:00"),  # 1 day
        ("D2", "r1", "0.04", "2017-03-04T12:00:00"),  # 3.5 days
        ("D3", "r2", "0.03", "2017-03-02T00:00:00"),
        ("D4", "r2", "0.04", "2017-03-02T00:00:00"),
    ]:
        events += [
            created(deal, "2017-03-01T00:00:00", owner=owner, amount=amount),
            ev("deal.won", won_at, deal_id=deal),
        ]
    by_rep = rows(events, "rep")

    assert by_rep["r1"]["won_value"] == Decimal("0.05")
    assert by_rep["r1"]["avg_won_value"] == Decimal("0.02")  # 0.025 -> even
    assert by_rep["r2"]["avg_won_value"] == Decimal("0.04")  # 0.035 -> even
    assert by_rep["r1"]["cycle_days_mean"] == 2.25
    assert by_rep["r1"]["cycle_days_median"] == 2.25


def test_month_and_quarter_group_deals_by_period_time_in_the_tenant_zone() -> None:
    events = [
        joined("r1"),
        created("D1", "2017-02-10T10:00:00", amount="10"),
        ev("deal.won", "2017-03-31T20:00:00Z", deal_id="D1"),  # Apr 1 04:00 in Shanghai
        created("D2", "2017-02-20T10:00:00"),  # open: its creation time
        created("D3", "2017-01-05T10:00:00"),
        ev("deal.lost", "2017-03-15T10:00:00", deal_id="D3"),
        ev("lead.created", "2017-03-02T10:00:00", lead_id="L1"),
        ev("activity.logged", "2017-06-30T23:00:00", activity_id="A1", kind="call",
           rep_id="r1", deal_id="D2"),
    ]
    by_month = rows(events, "month")
    assert {k: (r["deals"], r["open"], r["won"], r["lost"], r["leads"], r["activities"])
            for k, r in by_month.items()} == {
        "2017-02": (1, 1, 0, 0, 0, 0),
        "2017-03": (1, 0, 0, 1, 1, 0),
        "2017-04": (1, 0, 1, 0, 0, 0),
        "2017-06": (0, 0, 0, 0, 0, 1),
    }
    assert by_month["2017-04"]["won_value"] == Decimal("10")

    by_quarter = rows(events, "quarter")
    assert {k: (r["deals"], r["won"], r["lost"], r["leads"], r["activities"])
            for k, r in by_quarter.items()} == {
        "2017-Q1": (2, 0, 1, 1, 0),
        "2017-Q2": (1, 1, 0, 0, 1),
    }

    # by period, the date filter applies to the period time too: D2 (Feb) drops out
    spring = rows(events, "month", filters={"from": "2017-03-01"})
    assert list(spring) == ["2017-03", "2017-04", "2017-06"]
    # by any other dimension, deals are a creation cohort: only D1..D3 created before March
    assert rows(events, "rep", filters={"from": "2017-03-01"})["r1"]["deals"] == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("2017-03-10", date(2017, 3, 10)),
    ("20170310", date(2017, 3, 10)),
    ("2017-W10-1", date(2017, 3, 6)),  # ISO week 10's Monday
    ("2017-03-10T09:00", date(2017, 3, 10)),  # no zone: the date as written
    ("2017-03-10T20:00:00+00:00", date(2017, 3, 11)),  # 04:00 the next day in Shanghai
    ("2017-03-10T23:30:00-05:00", date(2017, 3, 11)),
    ("end of quarter", None), ("", None), ("2017-03", None), ("2017-02-30", None),
    ("2017-03-10T25:00", None),
])
def test_the_forecast_oracle_reads_an_expected_close_as_an_iso_date_in_the_tenants_zone(
        text: str, expected: date | None) -> None:
    from tests.oracles.forecast import _parse_close

    assert _parse_close(text, "Asia/Shanghai") == expected
