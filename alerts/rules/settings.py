"""What the rules share: their names, a tenant's thresholds and the shape of an answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from events.vocabulary import DEFAULT_TIMEZONE

RULES = ("stalled_deal", "inactive_deal", "lead_sla", "churn_risk", "engagement_drop", "pace")
KINDS = {"stalled_deal": "deal", "inactive_deal": "deal", "lead_sla": "lead",
         "churn_risk": "customer", "engagement_drop": "customer", "pace": "target"}
PACE_METRICS = ("won_value", "won_deals", "activities")


def instant(value: str) -> datetime:
    """The moment in UTC. Two aware datetimes with different zone objects compare by asking
    both zones for their offsets; in one zone they compare directly (bisect over thousands)."""
    return datetime.fromisoformat(value).astimezone(UTC)


@dataclass(frozen=True)
class RuleSettings:
    """A tenant's thresholds. Per-stage stall days come from the pipeline (`stall_days`)."""

    stall_days: float = 21.0  # per stage, while fewer than stall_min_samples won deals
    stall_quantile: float = 0.8
    stall_min_samples: int = 10
    inactive_days: float = 14.0
    lead_sla_hours: float = 24.0
    churn_gap_factor: float = 2.0
    churn_min_orders: int = 3
    engagement_recent_days: float = 30.0
    engagement_prior_days: float = 90.0
    engagement_drop: float = 0.5  # recent rate below this share of the prior rate
    pace_floor: float = 0.8
    pace_from: float = 1 / 3  # share of the period after which pace is judged
    key_customer_share: float = 0.2  # top share of customers by booked value
    tz: str = DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Assessment:
    """The condition for one subject as seen at `now`.

    `since`: the moment it holds from (may be in the future: the due time); None when it
    will not hold without a new event. `until`: when it stops holding by time alone.
    """

    rule: str
    key: str
    since: datetime | None
    until: datetime | None = None
    evidence: str = ""
    severity: str = "medium"
    owner: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def holds(self, now: datetime) -> bool:
        return self.since is not None and self.since <= now and (
            self.until is None or now < self.until)

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment the answer changes with no new event."""
        if self.since is not None and self.since > now:
            return self.since
        if self.holds(now):
            return self.until
        return None


def span_of_days(value: float) -> timedelta:
    return timedelta(days=value)


def fmt_days(days: float) -> str:
    return f"{days:.1f}"


Pair = tuple[str, str]  # (rule, subject key)
