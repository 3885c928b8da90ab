"""Replaying simulated history through the alert engine on event time: the moments alerts
open equal an independent pandas computation (tests/oracles/alerts.py).

At the pure level: the engine fed the changes in relay order, with event time as its only
clock, then advanced to the last event's time (timers due then fire). Every rule is covered."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from alerts.engine import AlertEngine
from alerts.rules import RuleSettings, ts
from events.parsing import parse_event
from events.rules import subject_of
from projections.facts import Change
from tests.history import simulated
from tests.oracles.alerts import (
    churn_starts,
    engagement_starts,
    inactive_starts,
    lead_sla_starts,
    pace_starts,
    stalled_starts,
)


@pytest.fixture(scope="module")
def replay() -> tuple[list, list]:
    events = simulated(days=200)
    engine = AlertEngine(RuleSettings())
    versions: Counter[tuple[str, str]] = Counter()
    transitions = []
    for position, raw in enumerate(events, 1):
        event = parse_event(raw, tenant="default", tz="Asia/Shanghai")
        subject = subject_of(event)
        versions[subject.kind, subject.key] += 1
        transitions += engine.apply(Change(position, "default", subject.kind, subject.key,
                                           versions[subject.kind, subject.key],
                                           event.canonical()))
    transitions += engine.advance(ts(events[-1]["occurred_at"]))
    return events, transitions


def opened(transitions: list, rule: str) -> set:
    return {(t.alert.subject, t.alert.became_true_at) for t in transitions
            if t.kind == "opened" and t.alert.rule == rule}


def close(a: set, b: set) -> bool:
    """Equal sets of (subject, moment), moments to the millisecond (float day arithmetic)."""
    if len(a) != len(b):
        return False
    return all(x[0] == y[0] and abs(x[1] - y[1]) < timedelta(milliseconds=1)
               for x, y in zip(sorted(a), sorted(b), strict=True))


def test_lead_sla_alerts_open_when_the_oracle_says(replay: tuple[list, list]) -> None:
    events, transitions = replay
    expected = lead_sla_starts(events)
    assert expected and opened(transitions, "lead_sla") == expected


def test_churn_alerts_open_when_the_oracle_says(replay: tuple[list, list]) -> None:
    events, transitions = replay
    expected = churn_starts(events)
    assert expected and close(opened(transitions, "churn_risk"), expected)


@pytest.mark.parametrize(("rule", "oracle"), [
    ("stalled_deal", stalled_starts), ("inactive_deal", inactive_starts),
    ("engagement_drop", engagement_starts), ("pace", pace_starts)])
def test_deal_customer_and_pace_alerts_open_when_the_oracle_says(
        replay: tuple[list, list], rule: str, oracle: Any) -> None:
    events, transitions = replay
    expected = oracle(events)
    assert expected and close(opened(transitions, rule), expected)


def test_every_opened_alert_is_opened_once(replay: tuple[list, list]) -> None:
    _, transitions = replay
    ids = [t.id for t in transitions]
    assert len(ids) == len(set(ids))
