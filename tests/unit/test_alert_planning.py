"""Routing, quiet hours, daily caps and digests, planned on a controlled clock in the tenant's
zone (Asia/Shanghai and America/New_York): who is told, on what, now or in which digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from alerts.lifecycle import Alert, Transition, opened, resolved, revised
from alerts.notify import Channel
from alerts.planning import Dispatch, idempotency_key, next_working_start, plan
from alerts.routing import QuietHours, Route, Routing

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"
MANAGERS = {"M-1": "VP-1", "R-1": "M-1"}
ROUTING = Routing(
    channels=(Channel("hook", "webhook", "http://127.0.0.1:9/hook", "s"),
              Channel("team-bot", "webhook", "http://127.0.0.1:9/team", "s")),
    routes=(Route("hook", ("owner",)), Route("team-bot", ("team",), severities=("high",))),
    quiet=QuietHours(start=time(9), end=time(18)), daily_cap=20)


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


def alert(severity: str = "medium", subject_kind: str = "deal", at: datetime | None = None,
          name: str = "a1") -> Alert:
    return Alert(name, "acme", "stalled_deal", subject_kind, "D-1",
                 at or datetime(2026, 3, 6, 12, tzinfo=UTC), "in proposal 30 days",
                 severity, "R-1", "M-1", "T-1")


def told(transition: Transition, now: datetime, zone: str = SHANGHAI,
         routing: Routing = ROUTING, **options: object) -> list[Dispatch]:
    return plan(transition, routing, managers=MANAGERS, zone=zone,
                interruptions=options.pop("interruptions", {}),  # type: ignore[arg-type]
                now=now, **options)  # type: ignore[arg-type]


def test_an_alert_in_working_hours_goes_to_its_owner_now() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 10, 30)  # a Wednesday morning
    [dispatch] = told(opened(alert()), now)
    assert (dispatch.recipient_id, dispatch.channel_id, dispatch.mode, dispatch.level) == (
        "R-1", "hook", "now", 0)
    assert dispatch.deliver_at == now.astimezone(UTC)
    assert dispatch.idempotency_key == idempotency_key("a1:opened", "R-1", "hook")


def test_a_friday_evening_alert_waits_for_mondays_nine_oclock_digest() -> None:
    friday_evening = local(SHANGHAI, 2026, 3, 6, 19, 15)
    [dispatch] = told(opened(alert()), friday_evening)
    assert dispatch.mode == "digest"
    assert dispatch.deliver_at == local(SHANGHAI, 2026, 3, 9, 9, 0).astimezone(UTC)


def test_quiet_hours_are_the_tenants_own_zone_not_utc() -> None:
    # 23:30 UTC on a Tuesday: 07:30 Wednesday in Shanghai (quiet), 18:30 in New York (quiet),
    # and 14:00 UTC is 22:00 in Shanghai (quiet) but 09:00 in New York (working).
    late = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    assert told(opened(alert()), late)[0].deliver_at == local(
        SHANGHAI, 2026, 3, 4, 9, 0).astimezone(UTC)
    assert told(opened(alert()), late, NEW_YORK)[0].deliver_at == local(
        NEW_YORK, 2026, 3, 4, 9, 0).astimezone(UTC)
    afternoon = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
    assert told(opened(alert()), afternoon, SHANGHAI)[0].mode == "digest"
    assert told(opened(alert()), afternoon, NEW_YORK)[0].mode == "now"


def test_a_saturday_alert_in_new_york_waits_for_monday_across_the_clock_change() -> None:
    # 2026-03-08 is the Sunday clocks go forward in New York: Monday 09:00 is EDT (UTC-4).
    saturday = local(NEW_YORK, 2026, 3, 7, 11, 0)
    [dispatch] = told(opened(alert()), saturday, NEW_YORK)
    assert dispatch.deliver_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_high_severity_goes_now_even_in_quiet_hours_and_straight_to_the_manager() -> None:
    sunday_night = local(SHANGHAI, 2026, 3, 8, 23, 0)
    dispatches = told(opened(alert("high")), sunday_night)
    assert {(d.recipient_id, d.channel_id, d.mode) for d in dispatches} == {
        ("M-1", "hook", "now"), ("team:T-1", "team-bot", "now")}
    assert {d.level for d in dispatches} == {1}


def test_key_customer_alerts_stay_with_the_owner_when_the_tenant_says_so() -> None:
    routing = replace(ROUTING, key_customers_to_manager=False)
    dispatches = told(opened(alert("high")), local(SHANGHAI, 2026, 3, 4, 10), routing=routing)
    assert ("R-1", "hook", 0) in {(d.recipient_id, d.channel_id, d.level) for d in dispatches}


def test_the_21st_interruption_of_the_day_goes_to_the_digest_with_a_cap_of_20() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 15, 0)
    assert told(opened(alert()), now, interruptions={"R-1": 19})[0].mode == "now"
    [capped] = told(opened(alert()), now, interruptions={"R-1": 20})
    assert capped.mode == "digest"
    assert capped.deliver_at == local(SHANGHAI, 2026, 3, 5, 9, 0).astimezone(UTC)
    # another recipient's count is their own
    assert told(opened(alert()), now, interruptions={"M-1": 50})[0].mode == "now"


def test_high_severity_passes_the_daily_cap_too() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 15, 0)
    assert {d.mode for d in told(opened(alert("high")), now,
                                 interruptions={"M-1": 99})} == {"now"}


def test_a_cap_without_quiet_hours_sends_the_rest_to_the_next_days_digest() -> None:
    routing = replace(ROUTING, quiet=None, daily_cap=2)
    now = local(SHANGHAI, 2026, 3, 7, 3, 0)  # a Saturday night: no quiet hours to keep
    assert told(opened(alert()), now, routing=routing, interruptions={"R-1": 1})[0].mode == \
        "now"
    [capped] = told(opened(alert()), now, routing=routing, interruptions={"R-1": 2})
    assert capped.deliver_at == local(SHANGHAI, 2026, 3, 8, 0, 0).astimezone(UTC)


def test_history_and_past_alerts_are_never_told() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 10, 30)
    assert told(opened(alert()), now, history=True) == []
    past = revised("opened", alert(), alert().became_true_at, 0, past=True)
    assert told(past, now) == []


def test_a_resolution_goes_only_to_those_told_of_the_opening() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 10, 30)
    end = resolved(alert(), now.astimezone(UTC))
    assert told(end, now) == []
    [dispatch] = told(end, now, told=[("R-1", "hook"), ("R-1", "hook")])
    assert (dispatch.transition_id, dispatch.recipient_id) == ("a1:resolved", "R-1")
    retraction = revised("retracted", alert(), now, 1)
    assert [d.recipient_id for d in told(retraction, now, told=[("M-1", "hook")])] == ["M-1"]


def test_a_users_acknowledgement_is_not_sent_back_to_them() -> None:
    ack = Transition("a1:acknowledged:x", "acknowledged", datetime(2026, 3, 4, tzinfo=UTC),
                     alert())
    assert told(ack, local(SHANGHAI, 2026, 3, 4, 10)) == []


def test_routes_filter_by_rule_and_severity_and_skip_unknown_channels() -> None:
    routing = replace(ROUTING, routes=(Route("hook", ("owner",), rules=("lead_sla",)),
                                       Route("gone", ("owner",))))
    assert told(opened(alert()), local(SHANGHAI, 2026, 3, 4, 10), routing=routing) == []


def test_the_same_transition_plans_the_same_keys_on_a_replay() -> None:
    now = local(SHANGHAI, 2026, 3, 4, 10)
    first = told(opened(alert("high")), now)
    assert first == told(opened(alert("high")), now)
    assert len({d.idempotency_key for d in first}) == len(first)


def test_a_week_without_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="working day"):
        next_working_start(local(SHANGHAI, 2026, 3, 4, 10), QuietHours(working_days=()))
