"""Alert rules: when each condition holds, computed from event time. Pure (no I/O, no clock).

Every rule answers one question for one subject at a moment `now`, from the fact
records of events that occurred by then (`Context.at`: a record that already holds later
events, because a late one made the engine judge the past again, is read as it stood
then): since when does the condition hold (or from when will it hold, if nothing else
happens), and until when. A condition
holds from the instant it is reached (`since <= now`) and stops at `until`
(exclusive) or when a later event changes the answer. docs/ALERTS.md defines each
rule in words; `tests/oracles/alerts.py` computes the same independently.

One rule a module (`stalled_deal`, `inactive_deal`, `lead_sla`, `churn_risk`,
`engagement_drop`, `pace`); what they share lives in `settings` (names, thresholds, the
answer), `context` (the tenant's indexes), `won_deals` and `periods`; `reach` says which
pairs exist and which a change may alter. This module re-exports the names importers use.
"""

from alerts.rules.churn_risk import churn_risk
from alerts.rules.context import Context
from alerts.rules.engagement_drop import (
    _edges_after,
    _edges_until,
    _engaged,
    _window_counts,
    engagement_drop,
)
from alerts.rules.inactive_deal import inactive_deal
from alerts.rules.lead_sla import lead_sla
from alerts.rules.pace import pace, pace_actual
from alerts.rules.periods import PaceTarget, period_bounds
from alerts.rules.reach import ASSESS, Touched, moments, rejudged, subjects, touched
from alerts.rules.settings import (
    KINDS,
    PACE_METRICS,
    RULES,
    Assessment,
    Pair,
    RuleSettings,
    instant,
)
from alerts.rules.stalled_deal import stalled_deal
from alerts.rules.won_deals import WonDeals, won_dwell
from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE, ts

__all__ = [
    "ASSESS", "DEFAULT_STAGES", "DEFAULT_TIMEZONE", "KINDS", "PACE_METRICS", "RULES",
    "Assessment", "Context", "PaceTarget", "Pair", "RuleSettings", "Touched", "WonDeals",
    "_edges_after", "_edges_until", "_engaged", "_window_counts", "churn_risk",
    "engagement_drop", "inactive_deal", "instant", "lead_sla", "moments", "pace",
    "pace_actual", "period_bounds", "rejudged", "stalled_deal", "subjects", "touched", "ts",
    "won_dwell",
]
