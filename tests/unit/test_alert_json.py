"""An alert's JSON form: every field in declaration order, times in ISO form, and the
state last; what the API, the SSE stream and webhooks read."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime

from alerts.lifecycle import Alert, opened, resolved

ALERT = Alert("a1", "default", "stalled_deal", "deal", "D-1",
              datetime(2017, 3, 1, 9, tzinfo=UTC), "in proposal 30.0 days", "high", "R-1",
              "M-1", "T-1", {"stage": "proposal", "days_in_stage": 30.0, "amount": "12.50"})


def test_an_open_alert_reads_as_its_fields_in_order_with_its_state() -> None:
    body = ALERT.as_json()
    assert list(body) == [f.name for f in fields(Alert)] + ["state"]
    expected = {**asdict(ALERT), "became_true_at": "2017-03-01T09:00:00+00:00",
                "resolved_at": None, "state": "open"}
    assert body == expected


def test_a_resolved_alert_carries_its_moment_and_state() -> None:
    transition = resolved(ALERT, datetime(2017, 3, 4, tzinfo=UTC))
    body = transition.as_json()
    assert body["alert"]["resolved_at"] == "2017-03-04T00:00:00+00:00"
    assert body["alert"]["state"] == "resolved"
    assert body["at"] == "2017-03-04T00:00:00+00:00"


def test_the_json_form_is_a_copy_changing_it_leaves_the_alert_as_it_was() -> None:
    body = opened(ALERT).as_json()
    body["alert"]["facts"]["stage"] = "changed"
    assert ALERT.facts["stage"] == "proposal"
