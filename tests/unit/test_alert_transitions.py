"""A transition read back from the JSON the outbox keeps is the transition that was told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.lifecycle import Alert, opened, resolved
from alerts.transitions import transition_from_json, view_path

AT = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
ALERT = Alert("a1", "acme", "churn_risk", "customer", "C-7", AT, "no order for 90 days",
              "high", "R-1", None, "T-1", {"key_customer": True, "orders": 4})


def test_an_opening_and_a_resolution_read_back_as_they_were() -> None:
    for transition in (opened(ALERT), resolved(ALERT, AT + timedelta(days=2))):
        assert transition_from_json(transition.as_json()) == transition


def test_the_view_leads_to_the_alerts_subject_on_the_dashboard() -> None:
    assert view_path(ALERT) == "/?alert=a1&customer=C-7"
