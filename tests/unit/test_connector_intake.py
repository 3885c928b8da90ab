"""Recording mapped notifications: a refused one is dead-lettered with the ledger's reasons,
the others of the same request are stored; retries are duplicates; what waits for its
subject is held (the ledger in memory)."""

from __future__ import annotations

from datetime import timedelta

from services.connectors import hubspot, intake
from services.connectors.mapping import DEFAULTS, parse_mapping
from services.eventstore.ledger import SalesLedger


def _note(event_id: int, kind: str, at_s: int, **extra: object) -> dict:
    return {"eventId": event_id, "subscriptionId": 1, "portalId": 33, "appId": 2,
            "occurredAt": 1_700_000_000_000 + at_s * 1000, "subscriptionType": kind,
            "attemptNumber": 0, "objectId": 501, "changeSource": "CRM", **extra}


def _record(ledger: SalesLedger, batch: list[dict]) -> list[intake.Result]:
    mapped = hubspot.map_batch(batch, DEFAULTS["hubspot"])
    return intake.record(ledger, "acme", mapped, tz="UTC", hold_for=timedelta(days=7))


def test_a_refused_notification_is_dead_lettered_and_the_rest_of_the_request_stored() -> None:
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    results = _record(ledger, [
        _note(1, "deal.creation", 0),
        _note(2, "deal.propertyChange", 60, propertyName="dealstage", propertyValue="closedwon"),
        _note(3, "deal.propertyChange", 120, propertyName="amount", propertyValue="10"),
        _note(4, "deal.propertyChange", 30, propertyName="dealstage",
              propertyValue="qualifiedtobuy"),
    ])
    assert [r.outcome for r in results] == ["accepted", "accepted", "dead_lettered", "accepted"]
    refused = results[2]
    assert refused.status == 409 and refused.errors and "deal.amount_changed" in str(
        refused.reason)
    deal = ledger.load("acme", "deal", "501")
    assert deal is not None and deal.state is not None and deal.state.status == "won"


def test_a_retried_request_is_all_duplicates_and_an_early_change_is_held() -> None:
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    early = [_note(5, "deal.propertyChange", 60, propertyName="amount", propertyValue="7")]
    assert [r.outcome for r in _record(ledger, early)] == ["held"]
    creation = [_note(1, "deal.creation", 0)]
    assert [r.outcome for r in _record(ledger, creation)] == ["accepted"]
    assert [r.outcome for r in _record(ledger, creation + early)] == ["duplicate", "duplicate"]


def test_skipped_and_unmappable_notifications_never_reach_the_ledger() -> None:
    ledger = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    mapping = parse_mapping("hubspot", {})
    mapped = hubspot.map_batch([_note(1, "contact.creation", 0), _note(2, "deal.deletion", 0)],
                               mapping)
    results = intake.record(ledger, "acme", mapped, tz="UTC", hold_for=timedelta(days=7))
    assert [r.outcome for r in results] == ["skipped", "dead_lettered"]
    assert ledger.recorder.max_notification_id() in (None, 0)
