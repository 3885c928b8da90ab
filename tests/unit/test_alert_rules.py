"""Scenario tests for every alert rule, on a controlled clock: each fires when its condition
becomes true (not a microsecond before), exactly once, and resolves when it clears."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.engine import AlertEngine
from alerts.lifecycle import Transition
from alerts.rules import RuleSettings
from events.parsing import parse_event
from events.rules import subject_of
from projections.facts import Change

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2017, 3, 1, tzinfo=TZ)
TICK = timedelta(microseconds=1)


class Scenario:
    """Feeds events to an engine as the relay would, and moves a clock by hand."""

    def __init__(self, **settings: Any) -> None:
        self.engine = AlertEngine(RuleSettings(**settings))
        self.versions: Counter[tuple[str, str]] = Counter()
        self.position = 0
        self.log: list[Transition] = []

    def event(self, type_: str, at: datetime, **data: Any) -> list[Transition]:
        if type_ == "deal.created":
            data.setdefault("stage", "prospecting")  # the ledger stores the implied stage
        event = parse_event({"id": f"e{self.position}", "type": type_,
                             "occurred_at": at.isoformat(), "data": data},
                            tenant="default", tz="Asia/Shanghai")
        subject = subject_of(event)
        self.versions[subject.kind, subject.key] += 1
        self.position += 1
        change = Change(self.position, "default", subject.kind, subject.key,
                        self.versions[subject.kind, subject.key], event.canonical())
        out = self.engine.apply(change)
        assert self.engine.apply(change) == [], "a redelivered event changes nothing"
        self.log += out
        return out

    def at(self, moment: datetime) -> list[Transition]:
        out = self.engine.advance(moment)
        self.log += out
        return out


def only(transitions: list[Transition], kind: str, rule: str) -> Transition:
    assert [(t.kind, t.alert.rule) for t in transitions] == [(kind, rule)], transitions
    return transitions[0]


def with_rep(s: Scenario) -> None:
    s.event("rep.joined", T0 - timedelta(days=30), rep_id="R1", name="A", team_id="T1",
            manager_id="M1")


def test_deal_stalls_when_its_stage_threshold_passes_and_recovers_when_it_moves() -> None:
    s = Scenario(inactive_days=1000)
    with_rep(s)
    s.event("pipeline.configured", T0 - timedelta(days=1),
            stages=["qualification", "negotiation"], stall_days={"negotiation": 15})
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", stage="negotiation", amount="100")
    assert s.at(T0 + timedelta(days=15) - TICK) == []
    opened = only(s.at(T0 + timedelta(days=15)), "opened", "stalled_deal")
    assert opened.alert.became_true_at == T0 + timedelta(days=15)
    assert opened.alert.evidence == "in negotiation 15.0 days; threshold 15.0 (configured)"
    assert (opened.alert.owner, opened.alert.manager, opened.alert.team) == ("R1", "M1", "T1")
    assert s.at(T0 + timedelta(days=40)) == []  # once
    moved = T0 + timedelta(days=41)
    resolved = only(s.event("deal.stage_changed", moved, deal_id="D1", stage="qualification"),
                    "resolved", "stalled_deal")
    assert resolved.alert.resolved_at == moved and resolved.alert.id == opened.alert.id


def test_stall_threshold_is_the_80th_percentile_of_won_dwell_once_history_suffices() -> None:
    s = Scenario(inactive_days=1000, stall_min_samples=5, stall_days=100)
    with_rep(s)
    for i, days in enumerate([1, 2, 3, 4, 5]):  # p80 of 1..5 = 4.2 days
        s.event("deal.created", T0 - timedelta(days=60), deal_id=f"W{i}", owner_id="R1")
        s.event("deal.won", T0 - timedelta(days=60 - days), deal_id=f"W{i}")
    s.event("deal.created", T0, deal_id="D1", owner_id="R1")
    assert s.at(T0 + timedelta(days=4.2) - TICK) == []
    opened = only(s.at(T0 + timedelta(days=4.2)), "opened", "stalled_deal")
    assert "(p80 of 5 won deals)" in opened.alert.evidence


def test_threshold_raised_by_a_win_clears_a_stalled_deal_until_it_passes_the_new_one() -> None:
    s = Scenario(inactive_days=1000, stall_min_samples=1, stall_days=100)
    with_rep(s)
    s.event("deal.created", T0, deal_id="W1", owner_id="R1")
    s.event("deal.won", T0 + timedelta(days=2), deal_id="W1")  # the threshold: 2 days
    s.event("deal.created", T0 + timedelta(days=3), deal_id="D1", owner_id="R1")
    stalled = only(s.at(T0 + timedelta(days=5)), "opened", "stalled_deal")
    # W2 dwelt 10 days: p80 of 2 and 10 is 8.4 days, and D1 has been in its stage for 3.
    s.event("deal.created", T0 - timedelta(days=4), deal_id="W2", owner_id="R1")
    win = T0 + timedelta(days=6)
    cleared = [t for t in s.event("deal.won", win, deal_id="W2") if t.alert.subject == "D1"]
    resolved = only(cleared, "resolved", "stalled_deal")
    assert resolved.at == win and resolved.alert.id == stalled.alert.id
    again = only(s.at(T0 + timedelta(days=3 + 8.4)), "opened", "stalled_deal")
    assert again.alert.subject == "D1" and "(p80 of 2 won deals)" in again.alert.evidence


def test_threshold_lowered_by_a_win_makes_a_deal_stalled_from_that_moment() -> None:
    s = Scenario(inactive_days=1000, stall_min_samples=1, stall_days=100)
    with_rep(s)
    s.event("deal.created", T0, deal_id="D1", owner_id="R1")
    s.event("deal.created", T0, deal_id="W1", owner_id="R1")
    win = T0 + timedelta(days=3)  # W1 dwelt 3 days: the threshold drops from 100 to 3
    opened = only(s.event("deal.won", win, deal_id="W1"), "opened", "stalled_deal")
    assert opened.alert.subject == "D1" and opened.alert.became_true_at == win


def test_deal_without_activity_alerts_after_14_days_unless_a_next_step_is_planned() -> None:
    s = Scenario(stall_days=1000)
    with_rep(s)
    s.event("deal.created", T0, deal_id="D1", owner_id="R1")
    due = T0 + timedelta(days=20)
    s.event("activity.scheduled", T0 + timedelta(days=1), activity_id="A1", kind="call",
            rep_id="R1", deal_id="D1", due_at=due.isoformat())
    assert s.at(T0 + timedelta(days=14)) == []  # a next step is planned and not overdue
    assert s.at(due - TICK) == []
    opened = only(s.at(due), "opened", "inactive_deal")
    assert opened.alert.became_true_at == due
    only(s.event("activity.logged", due + timedelta(hours=1), activity_id="A2", kind="call",
                 rep_id="R1", deal_id="D1"), "resolved", "inactive_deal")
    # Fourteen days after that activity it is inactive again: a new alert.
    again = only(s.at(due + timedelta(hours=1, days=14)), "opened", "inactive_deal")
    assert again.alert.id != opened.alert.id


def test_activity_at_the_very_moment_a_deal_turns_inactive_means_it_never_was() -> None:
    # At `due` the activity has occurred (event time, `since <= t` counting events by t).
    s = Scenario(stall_days=1000)
    with_rep(s)
    s.event("deal.created", T0, deal_id="D1", owner_id="R1")
    due = T0 + timedelta(days=14)
    assert s.event("activity.logged", due, activity_id="A1", kind="call", rep_id="R1",
                   deal_id="D1") == []
    assert s.at(due + timedelta(days=13)) == []
    assert s.log == []


def test_lead_sla_runs_from_assignment_and_stops_at_first_contact() -> None:
    s = Scenario()
    with_rep(s)
    s.event("lead.created", T0, lead_id="L1")
    assigned = T0 + timedelta(hours=2)
    s.event("lead.assigned", assigned, lead_id="L1", owner_id="R1")
    assert s.at(assigned + timedelta(hours=24) - TICK) == []
    opened = only(s.at(assigned + timedelta(hours=24)), "opened", "lead_sla")
    assert opened.alert.owner == "R1" and opened.alert.manager == "M1"
    contact = assigned + timedelta(hours=30)
    resolved = only(s.event("activity.logged", contact, activity_id="A1", kind="call",
                            rep_id="R1", lead_id="L1"), "resolved", "lead_sla")
    assert resolved.at == contact
    assert s.at(T0 + timedelta(days=30)) == []


def test_lead_contacted_within_the_sla_never_alerts() -> None:
    s = Scenario()
    with_rep(s)
    s.event("lead.created", T0, lead_id="L1", owner_id="R1")
    s.event("activity.logged", T0 + timedelta(hours=23), activity_id="A1", kind="call",
            rep_id="R1", lead_id="L1")
    assert s.at(T0 + timedelta(days=10)) == []


def orders(s: Scenario, days: list[float]) -> None:
    s.event("customer.created", T0, customer_id="C1")
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", customer_id="C1")
    for i, day in enumerate(days):
        s.event("order.booked", T0 + timedelta(days=day), order_id=f"O{i}",
                customer_id="C1", amount="10")


def test_churn_risk_after_twice_the_customers_median_gap_resolved_by_an_order() -> None:
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    orders(s, [0, 10, 30])  # gaps 10 and 20: median 15; due 30 + 2 x 15 = day 60
    due = T0 + timedelta(days=60)
    assert s.at(due - TICK) == []
    opened = only(s.at(due), "opened", "churn_risk")
    assert opened.alert.owner == "R1"  # the account owner: owner of the customer's deal
    assert opened.alert.evidence == "no order for 30.0 days; typical gap 15.0 days x 2"
    assert s.at(due + timedelta(days=100)) == []
    only(s.event("order.booked", due + timedelta(days=101), order_id="O9", customer_id="C1",
                 amount="5"), "resolved", "churn_risk")


def test_two_orders_are_not_enough_history_for_churn_risk() -> None:
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    orders(s, [0, 10])
    assert s.at(T0 + timedelta(days=400)) == []


def test_engagement_drop_when_the_last_30_days_fall_below_half_the_prior_rate() -> None:
    s = Scenario()
    with_rep(s)
    s.event("customer.created", T0, customer_id="C1")
    for day in range(0, 81, 10):  # nine interactions, days 0..80
        s.event("activity.logged", T0 + timedelta(days=day), activity_id=f"A{day}",
                kind="visit", rep_id="R1", customer_id="C1")
    # Day 100: the day-70 visit leaves the 30-day window: 1 recent (day 80) against 8 in the
    # 90 days before (rate 1/30 < half of 8/90). Between days 90 and 100: 2 against 7, no.
    day100 = T0 + timedelta(days=100)
    assert s.at(day100 - TICK) == []
    opened = only(s.at(day100), "opened", "engagement_drop")
    assert opened.alert.became_true_at == day100
    visit = T0 + timedelta(days=150)  # 1 recent against 5 (days 40..80): 1/30 > half of 5/90
    only(s.event("activity.logged", visit, activity_id="A150", kind="visit", rep_id="R1",
                 customer_id="C1"), "resolved", "engagement_drop")


def test_engagement_drop_clears_by_itself_when_the_prior_window_empties() -> None:
    s = Scenario()
    with_rep(s)
    s.event("customer.created", T0, customer_id="C1")
    s.event("activity.logged", T0, activity_id="A1", kind="visit", rep_id="R1",
            customer_id="C1")
    opened = only(s.at(T0 + timedelta(days=30)), "opened", "engagement_drop")
    resolved = only(s.at(T0 + timedelta(days=200)), "resolved", "engagement_drop")
    assert resolved.at == T0 + timedelta(days=120) and resolved.alert.id == opened.alert.id


def test_pace_judged_from_a_third_of_the_period_and_cleared_by_a_win() -> None:
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    s.event("target.set", T0, scope="rep", scope_id="R1", period="2017-03",
            metric="won_value", value="1000")
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", amount="200")
    s.event("deal.won", T0 + timedelta(days=1), deal_id="D1")
    # 200 projects above 800 until a quarter of March; judged only from a third: day 10 8h.
    third = T0 + timedelta(days=31 / 3)
    assert s.at(third - TICK) == []
    opened = only(s.at(third), "opened", "pace")
    # 200 over a third of the month projects 600 (60%): below the floor, above half of it.
    assert opened.alert.owner == "R1" and opened.alert.severity == "medium"
    assert "projected 60% at the current run-rate" in opened.alert.evidence
    s.event("deal.created", T0 + timedelta(days=12), deal_id="D2", owner_id="R1", amount="700")
    won = T0 + timedelta(days=15)
    only(s.event("deal.won", won, deal_id="D2"), "resolved", "pace")
    # 900 by day 15 projects below 800 from day 900/800 x 31 = 34.9: after March. Never again.
    assert s.at(T0 + timedelta(days=60)) == []


def test_pace_far_above_a_tiny_target_never_falls_behind() -> None:
    # A target set in the wrong unit (5 for 50,000): the run-rate would fall below the floor
    # thousands of years on, past any datetime; the period ends first, nothing fires.
    s = Scenario(stall_days=1000, inactive_days=1000)
    with_rep(s)
    s.event("target.set", T0, scope="rep", scope_id="R1", period="2017",
            metric="won_value", value="5")
    s.event("deal.created", T0, deal_id="D1", owner_id="R1", amount="50000")
    assert s.event("deal.won", T0 + timedelta(days=1), deal_id="D1") == []
    assert s.at(T0 + timedelta(days=400)) == []


def ten_activities_in_march() -> Scenario:
    """R1's target: 10 activities in March 2017, and a lead of theirs to log them on."""
    s = Scenario(stall_days=1000, inactive_days=1000, lead_sla_hours=10_000)
    with_rep(s)
    s.event("target.set", T0, scope="rep", scope_id="R1", period="2017-03",
            metric="activities", value="10")
    s.event("lead.created", T0, lead_id="L1", owner_id="R1")
    return s


def test_activities_pace_counts_every_activity_including_repeats_on_one_subject() -> None:
    s = ten_activities_in_march()
    for n in range(3):  # three on the same lead, by day 2
        s.event("activity.logged", T0 + timedelta(days=n), activity_id=f"A{n}", kind="call",
                rep_id="R1", lead_id="L1")
    # 3 of 10 project 80% until 3 / 8 of March (day 11.625), 9.3 h after its third.
    crossing = T0 + timedelta(days=31 * 3 / 8)
    assert s.at(crossing - timedelta(milliseconds=1)) == []
    opened = only(s.at(crossing + timedelta(milliseconds=1)), "opened", "pace")
    assert "activities 3 of 10" in opened.alert.evidence


def test_an_activity_postpones_pace_falling_behind_and_clears_it_once_behind() -> None:
    s = ten_activities_in_march()
    for n in (0, 1, 2, 5):
        s.event("activity.logged", T0 + timedelta(days=n), activity_id=f"A{n}", kind="call",
                rep_id="R1", lead_id="L1")
    # Three by day 2 fell behind at 3 / 8 of March; the fourth moved that to 4 / 8 (day 15.5).
    assert s.at(T0 + timedelta(days=15.5) - timedelta(milliseconds=1)) == []
    opened = only(s.at(T0 + timedelta(days=15.5)), "opened", "pace")
    assert opened.alert.became_true_at == T0 + timedelta(days=15.5)
    # A fifth on day 16 projects 5 x 31 / 16 = 9.7 of 10: back above the floor, at once.
    day16 = T0 + timedelta(days=16)
    resolved = only(s.event("activity.logged", day16, activity_id="A16", kind="call",
                            rep_id="R1", lead_id="L1"), "resolved", "pace")
    assert resolved.at == day16 and resolved.alert.id == opened.alert.id


def test_team_pace_names_the_team_and_its_manager() -> None:
    s = Scenario()
    with_rep(s)
    s.event("target.set", T0, scope="team", scope_id="T1", period="2017-03",
            metric="activities", value="90")
    opened = only(s.at(T0 + timedelta(days=11)), "opened", "pace")
    assert (opened.alert.team, opened.alert.manager, opened.alert.owner) == ("T1", "M1", None)
    assert opened.alert.became_true_at == T0 + timedelta(days=31 / 3)


def test_alert_ids_are_the_same_on_a_second_run() -> None:
    def run() -> list[str]:
        s = Scenario()
        with_rep(s)
        s.event("lead.created", T0, lead_id="L1", owner_id="R1")
        s.at(T0 + timedelta(days=2))
        return [t.id for t in s.log]

    assert run() == run() and len(run()) == 1
