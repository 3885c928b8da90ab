"""Escalation on a controlled clock: an alert nobody acknowledged climbs owner → manager →
manager's manager → admin, each step after the most specific escalation's minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.escalation import Rung, escalate, level_of, policy
from alerts.lifecycle import Alert
from alerts.notify import Channel
from alerts.planning import plan
from alerts.routing import Escalation, Route, Routing

OPENED = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Wednesday
MANAGERS = {"R-1": "M-1", "M-1": "VP-1"}
ROUTING = Routing(channels=(Channel("hook", "webhook", "http://127.0.0.1:9/", "s"),),
                  routes=(Route("hook", ("owner",)),),
                  escalations=(Escalation(60), Escalation(30, rule="stalled_deal"),
                               Escalation(10, rule="stalled_deal", severity="high"),
                               Escalation(45, severity="high")))


def alert(severity: str = "medium", rule: str = "stalled_deal",
          manager: str | None = "M-1") -> Alert:
    return Alert("a1", "acme", rule, "deal", "D-1", OPENED, "evidence", severity, "R-1",
                 manager, "T-1")


def test_the_most_specific_escalation_wins() -> None:
    assert policy(ROUTING, alert()) == Escalation(30, rule="stalled_deal")
    assert policy(ROUTING, alert("high")).after_minutes == 10  # type: ignore[union-attr]
    assert policy(ROUTING, alert("high", "lead_sla")).after_minutes == 45  # type: ignore[union-attr]
    assert policy(ROUTING, alert(rule="lead_sla")).after_minutes == 60  # type: ignore[union-attr]
    assert policy(Routing(), alert()) is None


def test_an_open_alert_climbs_one_level_each_time_its_minutes_pass() -> None:
    rung = Rung(alert(), 0, OPENED)
    assert escalate(rung, "open", ROUTING, MANAGERS, OPENED + timedelta(minutes=29)) is None
    step = escalate(rung, "open", ROUTING, MANAGERS, OPENED + timedelta(minutes=31))
    assert step is not None
    assert (step.id, step.kind, step.at, level_of(step)) == (
        "a1:escalated:1", "escalated", OPENED + timedelta(minutes=30), 1)
    second = escalate(Rung(alert(), 1, step.at), "open", ROUTING, MANAGERS,
                      OPENED + timedelta(hours=2))
    assert second is not None and level_of(second) == 2
    third = escalate(Rung(alert(), 2, second.at), "open", ROUTING, MANAGERS,
                     OPENED + timedelta(hours=2))
    assert third is not None and (level_of(third), third.at) == (
        3, OPENED + timedelta(minutes=90))
    assert escalate(Rung(alert(), 3, third.at), "open", ROUTING, MANAGERS,
                    OPENED + timedelta(days=1)) is None  # the admin is the top


def test_an_acknowledged_snoozed_or_closed_alert_does_not_escalate() -> None:
    late = OPENED + timedelta(days=1)
    for state in ("acknowledged", "snoozed", "resolved", "retracted"):
        assert escalate(Rung(alert(), 0, OPENED), state, ROUTING, MANAGERS, late) is None


def test_a_level_without_a_person_is_skipped() -> None:
    step = escalate(Rung(alert(manager=None), 0, OPENED), "open", ROUTING, {},
                    OPENED + timedelta(hours=1))
    assert step is not None and level_of(step) == 3  # no manager: straight to the admin


def test_an_escalation_goes_to_the_new_levels_person_and_counts_as_an_interruption() -> None:
    step = escalate(Rung(alert(), 1, OPENED), "open", ROUTING, MANAGERS,
                    OPENED + timedelta(hours=1))
    assert step is not None
    [dispatch] = plan(step, ROUTING, managers=MANAGERS, zone="Asia/Shanghai",
                      interruptions={}, now=OPENED + timedelta(hours=1), level=level_of(step))
    assert (dispatch.recipient_id, dispatch.channel_id, dispatch.level, dispatch.mode) == (
        "VP-1", "hook", 2, "now")
