"""Pipedrive webhooks v2 as contract events: notifications shaped as Pipedrive's "Guide for
Webhooks v2" shows them (`meta` with action/entity/entity_id/company_id/timestamp/attempt,
`data` the object after the change, `previous` the changed fields' former values)."""

from __future__ import annotations

from typing import Any

from services.connectors import pipedrive
from services.connectors.mapping import DEFAULTS, parse_mapping


def meta(action: str, entity: str, entity_id: int, timestamp: str,
         attempt: int = 1) -> dict[str, Any]:
    return {"action": action, "entity": entity, "entity_id": str(entity_id),
            "company_id": "12345678", "correlation_id": "c0ffee-1", "id": "b6c1a3e2-0001",
            "is_bulk_edit": False, "timestamp": timestamp, "type": "general",
            "user_id": "987", "version": "2.0", "webhook_id": "42", "webhook_owner_id": "987",
            "change_source": "app", "permitted_user_ids": ["987"], "attempt": attempt,
            "host": "acme.pipedrive.com"}


def deal(**changes: Any) -> dict[str, Any]:
    return {"id": 5, "title": "ACME rollout", "owner_id": 987, "creator_user_id": 987,
            "value": 12000, "currency": "EUR", "stage_id": 2, "pipeline_id": 1,
            "status": "open", "add_time": "2024-05-02T08:00:00Z",
            "update_time": "2024-05-02T08:00:00Z", "stage_change_time": None,
            "won_time": None, "lost_time": None, "close_time": None, "lost_reason": None,
            "expected_close_date": "2024-06-30", "org_id": 77, "person_id": 12,
            "origin": "ManuallyCreated", "channel": None, "label_ids": [],
            "custom_fields": {"a1b2c3product": {"type": "varchar", "value": "Suite"}},
            **changes}


def test_a_created_deal_carries_owner_stage_amount_close_date_and_dimensions() -> None:
    mapping = parse_mapping("pipedrive", {"dimensions": {"source": "origin",
                                                         "product": "a1b2c3product"}})
    mapped = pipedrive.map_webhook({"data": deal(), "previous": None,
                                    "meta": meta("create", "deal", 5, "2024-05-02T08:00:01Z")},
                                   mapping)
    assert [e["type"] for e in mapped.events] == ["rep.joined", "deal.created"]
    created = mapped.events[1]
    assert created["occurred_at"] == "2024-05-02T08:00:00+00:00"
    assert created["data"] == {"deal_id": "5", "owner_id": "987", "stage": "qualification",
                               "amount": "12000", "currency": "EUR",
                               "expected_close": "2024-06-30", "source": "ManuallyCreated",
                               "product": "Suite"}


def test_changes_become_the_contract_changes_of_the_fields_in_previous() -> None:
    payload = {"data": deal(stage_id=4, value=15000, update_time="2024-05-09T10:00:00Z",
                            stage_change_time="2024-05-09T10:00:00Z"),
               "previous": {"stage_id": 2, "value": 12000},
               "meta": meta("change", "deal", 5, "2024-05-09T10:00:01Z")}
    mapped = pipedrive.map_webhook(payload, DEFAULTS["pipedrive"])
    assert [(e["type"], e["data"].get("stage") or e["data"].get("amount"))
            for e in mapped.events] == [("deal.amount_changed", "15000"),
                                        ("deal.stage_changed", "proposal")]


def test_won_and_lost_status_close_at_their_own_times_with_the_reason() -> None:
    won = pipedrive.map_webhook({"data": deal(status="won", won_time="2024-06-01T09:00:00Z"),
                                 "previous": {"status": "open"},
                                 "meta": meta("change", "deal", 5, "2024-06-01T09:00:02Z")},
                                DEFAULTS["pipedrive"])
    lost = pipedrive.map_webhook({"data": deal(status="lost", lost_time="2024-06-02T09:00:00Z",
                                               lost_reason="Price"),
                                  "previous": {"status": "open"},
                                  "meta": meta("change", "deal", 5, "2024-06-02T09:00:02Z")},
                                 DEFAULTS["pipedrive"])
    assert won.events[0]["type"] == "deal.won"
    assert won.events[0]["occurred_at"] == "2024-06-01T09:00:00+00:00"
    assert won.events[0]["data"] == {"deal_id": "5", "amount": "12000"}
    assert lost.events[0]["data"] == {"deal_id": "5", "reason": "Price"}


def test_a_retry_is_the_same_events_and_another_change_is_not() -> None:
    payload = {"data": deal(stage_id=3), "previous": {"stage_id": 2},
               "meta": meta("change", "deal", 5, "2024-05-03T08:00:00Z")}
    retry = {**payload, "meta": {**payload["meta"], "attempt": 3}}
    later = {**payload, "meta": {**payload["meta"], "timestamp": "2024-05-04T08:00:00Z"}}
    ids = [[e["id"] for e in pipedrive.map_webhook(p, DEFAULTS["pipedrive"]).events]
           for p in (payload, retry, later)]
    assert ids[0] == ids[1] != ids[2]


def test_a_done_activity_on_a_deal_is_logged_and_an_open_one_skipped() -> None:
    activity = {"id": 31, "type": "call", "owner_id": 987, "done": True, "deal_id": 5,
                "org_id": 77, "person_id": 12, "subject": "Call back", "duration": "00:45",
                "due_date": "2024-05-05", "due_time": "10:00",
                "marked_as_done_time": "2024-05-05T10:45:00Z",
                "add_time": "2024-05-04T08:00:00Z", "update_time": "2024-05-05T10:45:00Z"}
    done = pipedrive.map_webhook({"data": activity, "previous": {"done": False},
                                  "meta": meta("change", "activity", 31,
                                               "2024-05-05T10:45:01Z")}, DEFAULTS["pipedrive"])
    logged = done.events[-1]
    assert logged["type"] == "activity.logged"
    assert logged["data"] == {"activity_id": "31", "kind": "call", "rep_id": "987",
                              "deal_id": "5", "duration_min": 45}
    assert logged["occurred_at"] == "2024-05-05T10:45:00+00:00"
    open_one = pipedrive.map_webhook({"data": {**activity, "done": False}, "previous": None,
                                      "meta": meta("create", "activity", 31,
                                                   "2024-05-04T08:00:01Z")},
                                     DEFAULTS["pipedrive"])
    assert open_one.skipped and not open_one.events


def test_an_organization_is_a_customer_and_a_person_is_not_tracked() -> None:
    org = pipedrive.map_webhook({"data": {"id": 77, "name": "ACME GmbH",
                                          "add_time": "2024-04-01T00:00:00Z"},
                                 "previous": None,
                                 "meta": meta("create", "organization", 77,
                                              "2024-04-01T00:00:01Z")}, DEFAULTS["pipedrive"])
    person = pipedrive.map_webhook({"data": {"id": 12, "name": "Ann"}, "previous": None,
                                    "meta": meta("create", "person", 12,
                                                 "2024-04-01T00:00:01Z")}, DEFAULTS["pipedrive"])
    assert org.events[0]["data"] == {"customer_id": "77", "name": "ACME GmbH"}
    assert person.skipped


def test_unknown_stages_deletions_and_reopenings_are_dead_lettered() -> None:
    mapping = DEFAULTS["pipedrive"]
    unknown = pipedrive.map_webhook({"data": deal(stage_id=99), "previous": {"stage_id": 2},
                                     "meta": meta("change", "deal", 5, "2024-05-03T08:00:00Z")},
                                    mapping)
    deleted = pipedrive.map_webhook({"data": None, "previous": deal(),
                                     "meta": meta("delete", "deal", 5, "2024-05-03T08:00:00Z")},
                                    mapping)
    reopened = pipedrive.map_webhook({"data": deal(), "previous": {"status": "lost"},
                                      "meta": meta("change", "deal", 5, "2024-05-03T08:00:00Z")},
                                     mapping)
    orphan = pipedrive.map_webhook({"data": {"id": 3, "type": "call", "owner_id": 987,
                                             "done": True, "person_id": 12,
                                             "marked_as_done_time": "2024-05-05T10:45:00Z"},
                                    "previous": None,
                                    "meta": meta("create", "activity", 3,
                                                 "2024-05-05T10:45:01Z")}, mapping)
    for dead in (unknown, deleted, reopened, orphan):
        assert dead.dead and not dead.events, dead
    assert "99" in str(unknown.dead)
