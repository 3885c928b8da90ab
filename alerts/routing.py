"""A tenant's alert routing, as configured by its admin: the shared model. Pure.

Which rules and severities go to which channel and whom (`Route`), when an alert nobody
acknowledged goes up a level (`Escalation`), when not to interrupt (`QuietHours`, a daily
cap per recipient, digests) and how to reach each person (`contacts`). The API stores it as
events in the event store; the alerter reads it to plan deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Literal

from alerts.notify import Channel, Recipient

# Whom a route addresses, relative to the alert: its owner rep, the owner's manager, the
# manager's manager, the tenant's admins, or the owner's team channel.
Target = Literal["owner", "manager", "managers_manager", "admin", "team"]
TARGETS: tuple[Target, ...] = ("owner", "manager", "managers_manager", "admin", "team")


@dataclass(frozen=True)
class Route:
    channel: str  # a Channel's id
    to: tuple[Target, ...]
    rules: tuple[str, ...] = ()  # empty: every rule
    severities: tuple[str, ...] = ()  # empty: every severity


@dataclass(frozen=True)
class Escalation:
    """An alert still open (not acknowledged, snoozed, resolved) `after_minutes` after it
    reached a level goes to the next: owner → manager → manager's manager → admin."""

    after_minutes: int
    rule: str | None = None  # None: every rule
    severity: str | None = None  # None: every severity


@dataclass(frozen=True)
class QuietHours:
    """Working hours in the tenant's zone; outside them alerts wait for the digest at the
    start of the next working day, but for the severities let through."""

    start: time = time(9, 0)
    end: time = time(18, 0)
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday is 0
    let_through: tuple[str, ...] = ("high",)


@dataclass(frozen=True)
class Routing:
    channels: tuple[Channel, ...] = ()
    routes: tuple[Route, ...] = ()
    escalations: tuple[Escalation, ...] = ()
    quiet: QuietHours | None = None
    daily_cap: int | None = None  # interruptions per recipient per day; the rest: digest
    key_customers_to_manager: bool = True  # high-severity key-customer alerts skip a level
    contacts: dict[str, Recipient] = field(default_factory=dict)  # by person or team id
