"""Escalation: an alert nobody acted on goes up a level. Pure; the clock is passed in.

An alert still `open` (not acknowledged, snoozed, resolved or retracted: `effective_state`)
`after_minutes` after it reached its level goes to the next level that has a person:
owner → manager → manager's manager → admin. Each step is a visible transition, `escalated`,
whose id numbers the level reached (`<alert id>:escalated:<level>`) and whose `at` is the
moment it fell due, so a restart or a replay finds the same step with the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.lifecycle import Alert, Transition
from alerts.planning import LEVELS, person
from alerts.routing import Escalation, Routing

ESCALATED = "escalated"


@dataclass(frozen=True)
class Rung:
    """Where an alert stands: its level, and when it reached it."""

    alert: Alert
    level: int
    reached_at: datetime


def policy(routing: Routing, alert: Alert) -> Escalation | None:
    """The most specific escalation for the alert's rule and severity: both named, then the
    rule alone, then the severity alone, then the tenant's default."""
    def score(e: Escalation) -> int:
        return (2 if e.rule else 0) + (1 if e.severity else 0)

    fitting = [e for e in routing.escalations
               if e.rule in (None, alert.rule) and e.severity in (None, alert.severity)]
    return max(fitting, key=score, default=None)


def escalation_id(alert_id: str, level: int) -> str:
    return f"{alert_id}:{ESCALATED}:{level}"


def level_of(transition: Transition) -> int:
    """The level an `escalated` transition reached (from its id)."""
    return int(transition.id.rsplit(":", 1)[1])


def next_level(alert: Alert, level: int, managers: Mapping[str, str | None]) -> int | None:
    """The next level above `level` that names someone; None at the top."""
    for candidate in range(level + 1, len(LEVELS)):
        if person(alert, LEVELS[candidate], managers):
            return candidate
    return None


def due(rung: Rung, routing: Routing) -> datetime | None:
    """When `rung` escalates if still open; None if it never does."""
    rule = policy(routing, rung.alert)
    return None if rule is None else rung.reached_at + timedelta(minutes=rule.after_minutes)


def escalate(rung: Rung, state: str, routing: Routing, managers: Mapping[str, str | None],
             now: datetime) -> Transition | None:
    """The escalation of `rung` due by `now`, if its alert is still `open`; else None."""
    when = due(rung, routing)
    if state != "open" or when is None or when > now:
        return None
    level = next_level(rung.alert, rung.level, managers)
    if level is None:
        return None
    return Transition(escalation_id(rung.alert.id, level), ESCALATED, when, rung.alert)
