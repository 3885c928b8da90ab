"""Who is told of a transition, on which channel, and when: deliveries planned. Pure.

`plan` turns one transition and the tenant's `Routing` into `Dispatch`es, one per (recipient,
channel), each with an idempotency key derived from (transition, recipient, channel), so a
replay or a restart plans the same keys and the outbox keeps one row per key. The clock and
every lookup are passed in: the planner reads nothing.

- `opened` (news, never `past`) and `escalated` are told; `resolved`, `retracted` and
  `reopened` only to those already told of the alert (`told`).
- Outside working hours in the tenant's zone, or past a recipient's daily cap of
  interruptions, a dispatch waits for the digest at the start of the next working day,
  unless its severity is let through.
- A high-severity key-customer alert starts at the manager's level
  (`key_customers_to_manager`): the manager is told at once, and escalation goes on from
  there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.lifecycle import Alert, Transition
from alerts.routing import QuietHours, Route, Routing, Target

Mode = Literal["now", "digest"]
# The escalation ladder: level n is told to LEVELS[n]'s person.
LEVELS: tuple[Target, ...] = ("owner", "manager", "managers_manager", "admin")
TOLD_ONCE_OPEN = ("opened", "escalated")  # kinds that start or raise a conversation
FOLLOW_UPS = ("resolved", "retracted", "reopened")  # only to those already told
CUSTOMER_SUBJECTS = ("deal", "customer")  # "high" on these means a key customer


@dataclass(frozen=True)
class Dispatch:
    """One message to send: `transition_id` to `recipient_id` over `channel_id`, due at
    `deliver_at` (UTC), alone (`now`) or in the recipient's digest (`digest`)."""

    tenant: str
    transition_id: str
    recipient_id: str
    channel_id: str
    deliver_at: datetime
    mode: Mode
    level: int
    idempotency_key: str


def idempotency_key(transition_id: str, recipient_id: str, channel_id: str) -> str:
    raw = f"{transition_id}|{recipient_id}|{channel_id}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def is_key_customer_alert(alert: Alert) -> bool:
    return alert.severity == "high" and alert.subject_kind in CUSTOMER_SUBJECTS


def start_level(alert: Alert, routing: Routing) -> int:
    """The level an alert is first told at: the manager's for a high-severity key-customer
    alert when the tenant asks for it (and there is a manager), else the owner's."""
    if routing.key_customers_to_manager and is_key_customer_alert(alert) and alert.manager:
        return 1
    return 0


def person(alert: Alert, target: Target, managers: Mapping[str, str | None]) -> str | None:
    """Who `target` is for this alert: a rep id, `team:<id>`, `admin`, or None."""
    if target == "owner":
        return alert.owner
    if target == "manager":
        return alert.manager
    if target == "managers_manager":
        return managers.get(alert.manager) if alert.manager else None
    if target == "admin":
        return "admin"
    return f"team:{alert.team}" if alert.team else None


def matching(routing: Routing, alert: Alert) -> list[Route]:
    return [r for r in routing.routes
            if (not r.rules or alert.rule in r.rules)
            and (not r.severities or alert.severity in r.severities)]


def _pairs(transition: Transition, routing: Routing, managers: Mapping[str, str | None],
           level: int) -> list[tuple[str, str]]:
    """(recipient, channel) pairs an `opened` or `escalated` transition goes to."""
    alert = transition.alert
    routes = matching(routing, alert)
    out: list[tuple[str, str]] = []
    if transition.kind == "escalated":
        # The new level's person, on the routes addressing that level, else on every
        # route of this rule and severity: escalating means telling them where alerts go.
        who = person(alert, LEVELS[level], managers)
        addressed = [r for r in routes if LEVELS[level] in r.to] or routes
        out = [(who, r.channel) for r in addressed] if who else []
    else:
        skip_owner = start_level(alert, routing) == 1
        for route in routes:
            for target in route.to:
                if target == "owner" and skip_owner:
                    target = "manager"  # straight to the manager
                who = person(alert, target, managers)
                if who:
                    out.append((who, route.channel))
    return list(dict.fromkeys(out))


def working(moment: datetime, quiet: QuietHours) -> bool:
    return moment.weekday() in quiet.working_days and quiet.start <= moment.time() < quiet.end


def next_working_start(local: datetime, quiet: QuietHours) -> datetime:
    """The start of the first working day whose start is after `local` (tenant zone)."""
    if not quiet.working_days:
        raise ValueError("quiet hours need at least one working day")
    day = local.date()
    for _ in range(8):
        start = datetime.combine(day, quiet.start, local.tzinfo)
        if day.weekday() in quiet.working_days and start > local:
            return start
        day += timedelta(days=1)
    raise AssertionError("a working day within a week")  # pragma: no cover


def day_start(now: datetime, zone: str) -> datetime:
    """Midnight of `now`'s day in the tenant's zone: where interruptions are counted from."""
    local = now.astimezone(ZoneInfo(zone))
    return datetime.combine(local.date(), time(0), local.tzinfo)


def plan(transition: Transition, routing: Routing, *, managers: Mapping[str, str | None],
         zone: str, interruptions: Mapping[str, int], now: datetime, level: int = 0,
         told: Collection[tuple[str, str]] = (), history: bool = False) -> list[Dispatch]:
    """The dispatches for `transition` at `now`. `level`: an escalated transition's new
    level; `told`: the (recipient, channel) pairs already told of this alert;
    `interruptions`: per recipient, messages sent alone (`now`) since the day began in
    `zone`; `history`: the transition is history (never news: nothing is sent)."""
    if history or transition.past:
        return []
    if transition.kind in TOLD_ONCE_OPEN:
        pairs = _pairs(transition, routing, managers, level)
        if transition.kind == "opened":
            level = start_level(transition.alert, routing)
    elif transition.kind in FOLLOW_UPS:
        pairs = list(dict.fromkeys(told))
    else:
        return []  # a user's own acknowledgement or snooze: they know
    channels = {c.id for c in routing.channels}
    local = now.astimezone(ZoneInfo(zone))
    out = []
    counted: dict[str, int] = dict(interruptions)
    for recipient, channel in pairs:
        if channel not in channels:
            continue
        mode, at = _when(transition, routing, local, counted.get(recipient, 0))
        if mode == "now" and transition.kind in TOLD_ONCE_OPEN:
            counted[recipient] = counted.get(recipient, 0) + 1
        out.append(Dispatch(transition.alert.tenant, transition.id, recipient, channel,
                            at.astimezone(UTC), mode, level,
                            idempotency_key(transition.id, recipient, channel)))
    return out


def _when(transition: Transition, routing: Routing, local: datetime, interrupted: int
          ) -> tuple[Mode, datetime]:
    quiet = routing.quiet
    if transition.alert.severity in (quiet.let_through if quiet else ("high",)):
        return "now", local
    capped = (transition.kind in TOLD_ONCE_OPEN and routing.daily_cap is not None
              and interrupted >= routing.daily_cap)
    if quiet is None:
        if not capped:
            return "now", local
        quiet = QuietHours(start=time(0), end=time(23, 59, 59), working_days=tuple(range(7)))
    if working(local, quiet) and not capped:
        return "now", local
    return "digest", next_working_start(local, quiet)
