"""A transition back from its stored JSON (the outbox keeps it so, until it is sent). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.lifecycle import Alert, Transition


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def alert_from_json(doc: dict[str, Any]) -> Alert:
    return Alert(doc["id"], doc["tenant"], doc["rule"], doc["subject_kind"], doc["subject"],
                 datetime.fromisoformat(doc["became_true_at"]), doc["evidence"],
                 doc["severity"], doc.get("owner"), doc.get("manager"), doc.get("team"),
                 dict(doc.get("facts") or {}), _moment(doc.get("resolved_at")),
                 _moment(doc.get("retracted_at")))


def transition_from_json(doc: dict[str, Any]) -> Transition:
    return Transition(doc["id"], doc["kind"], datetime.fromisoformat(doc["at"]),
                      alert_from_json(doc["alert"]))


def view_path(alert: Alert) -> str:
    """The dashboard view of the alert's subject (its query string is the view)."""
    return f"/?alert={alert.id}&{alert.subject_kind}={alert.subject}"
