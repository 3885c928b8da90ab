"""An alert's life: opened when its condition holds, resolved when it clears. Pure.

One open alert per (rule, subject). Its id derives from tenant, rule, subject and
the moment the condition became true, and each transition's id from the alert's,
so a redelivered event, a restart or a replay yields the same ids and a sink can
drop what it has already seen. A late event may show that an alert never held: it is
`retracted` (a transition like the others, never a silent delete); or that it held
longer or shorter than told: `reopened`, or `resolved` at another moment. Acknowledging
and snoozing are the user's transitions; they never reopen or resolve anything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

STATES = ("open", "acknowledged", "snoozed", "resolved", "retracted")


def alert_id(tenant: str, rule: str, subject: str, became_true_at: datetime) -> str:
    raw = f"{tenant}|{rule}|{subject}|{became_true_at.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Alert:
    id: str
    tenant: str
    rule: str
    subject_kind: str
    subject: str
    became_true_at: datetime
    evidence: str
    severity: str
    owner: str | None
    manager: str | None
    team: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None
    retracted_at: datetime | None = None  # a later event showed it never held

    @property
    def state(self) -> str:
        return ("retracted" if self.retracted_at else "resolved" if self.resolved_at
                else "open")

    def as_json(self) -> dict[str, Any]:
        # Written out, in field order: `dataclasses.asdict` deep-copies every value (5% of
        # the alerter's CPU for this one call). `facts` holds plain values: a shallow copy.
        return {"id": self.id, "tenant": self.tenant, "rule": self.rule,
                "subject_kind": self.subject_kind, "subject": self.subject,
                "became_true_at": self.became_true_at.isoformat(), "evidence": self.evidence,
                "severity": self.severity, "owner": self.owner, "manager": self.manager,
                "team": self.team, "facts": dict(self.facts),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "retracted_at": self.retracted_at.isoformat() if self.retracted_at else None,
                "state": self.state}


@dataclass(frozen=True)
class Transition:
    """One event of the alert log: `opened`, `resolved`, `retracted` or `reopened` (the
    engine's), `acknowledged` or `snoozed` (a user's). `at` is event time: when the
    condition became true or cleared (retracted, reopened: when that became known).
    `known_at`: when the engine learnt it, if later than `at` (a late event); `past`: it
    describes a condition that held only before it was known, never news."""

    id: str
    kind: str
    at: datetime
    alert: Alert
    known_at: datetime | None = None
    past: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at.isoformat(),
                "alert": self.alert.as_json()}


def opened(alert: Alert) -> Transition:
    return Transition(f"{alert.id}:opened", "opened", alert.became_true_at, alert)


def resolved(alert: Alert, at: datetime) -> Transition:
    closed = replace(alert, resolved_at=at)
    return Transition(f"{alert.id}:resolved", "resolved", at, closed)


def revised(kind: str, alert: Alert, at: datetime, issued: int, *,
            known_at: datetime | None = None, past: bool = False) -> Transition:
    """A transition of `alert` as the `issued`-th for its id (0 first): the first opening and
    the first resolution keep the ids `opened` and `resolved` give; any other, after a
    late event judged the alert again, is numbered, so no sink drops it as seen."""
    plain = (kind, issued) in (("opened", 0), ("resolved", 1))
    tid = f"{alert.id}:{kind}" if plain else f"{alert.id}:{kind}:{issued}"
    return Transition(tid, kind, at, alert, known_at, past)


class AlertClosed(ValueError):
    """A resolved or retracted alert cannot be acknowledged or snoozed."""


def acknowledge(alert: dict[str, Any], at: datetime, by: str | None) -> dict[str, Any]:
    """The user fields after acknowledging `alert` (its stored JSON form)."""
    if alert["state"] in ("resolved", "retracted"):
        raise AlertClosed(alert["id"])
    return {"acknowledged_at": at.isoformat(), "acknowledged_by": by}


def snooze(alert: dict[str, Any], until: datetime, at: datetime,
           user: dict[str, Any]) -> dict[str, Any]:
    if alert["state"] in ("resolved", "retracted"):
        raise AlertClosed(alert["id"])
    if until <= at:
        raise ValueError("until must be in the future")
    return {**user, "snoozed_until": until.isoformat(), "snoozed_at": at.isoformat()}


def user_transition_id(alert_id: str, kind: str, at: datetime) -> str:
    return f"{alert_id}:{kind}:{at.isoformat()}"


def effective_state(alert: dict[str, Any], user: dict[str, Any], now: datetime) -> str:
    """retracted, resolved > snoozed (until its time) > acknowledged > open."""
    if alert["state"] in ("resolved", "retracted"):
        return str(alert["state"])
    until = user.get("snoozed_until")
    if until and datetime.fromisoformat(until) > now:
        return "snoozed"
    if user.get("acknowledged_at"):
        return "acknowledged"
    return "open"
