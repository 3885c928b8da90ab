"""Salesforce Change Data Capture as contract events: change events shaped as Salesforce's
"Change Event Message Structure" shows them (`ChangeEventHeader` beside the record's
fields), as a Kafka Connect Salesforce CDC source puts them on a topic in JSON."""

from __future__ import annotations

from typing import Any

from services.connectors.mapping import DEFAULTS, parse_mapping
from services.connectors.salesforce_cdc import map_change_event

OPP = "0065e00000Xy1AbAAJ"
COMMIT = 1_714_636_800_000  # 2024-05-02T08:00:00Z


def header(change: str, entity: str = "Opportunity", fields: list[str] | None = None,
           records: list[str] | None = None, sequence: int = 1) -> dict[str, Any]:
    return {"entityName": entity, "recordIds": records or [OPP], "changeType": change,
            "changeOrigin": "com/salesforce/api/soap/60.0;client=SfdcInternalAPI/",
            "transactionKey": "0002343d-9d90-e395-ed20-cf416ba652ad",
            "sequenceNumber": sequence, "commitTimestamp": COMMIT, "commitNumber": 10624004701,
            "commitUser": "0055e000001AbcdAAC", "changedFields": fields or [],
            "diffFields": [], "nulledFields": []}


def test_a_created_opportunity_is_a_deal_with_owner_stage_amount_and_close_date() -> None:
    message = {"ChangeEventHeader": header("CREATE"), "Name": "ACME - 200 seats",
               "AccountId": "0015e00000AbCdEAAZ", "StageName": "Needs Analysis",
               "Amount": 48000.0, "CloseDate": 19905, "OwnerId": "0055e000001AbcdAAC",
               "IsClosed": False, "IsWon": False, "LeadSource": "Web",
               "CreatedDate": COMMIT, "CreatedById": "0055e000001AbcdAAC"}
    mapped = map_change_event(message, DEFAULTS["salesforce"])
    assert [e["type"] for e in mapped.events] == ["rep.joined", "deal.created"]
    assert mapped.events[1]["data"] == {
        "deal_id": OPP, "owner_id": "0055e000001AbcdAAC", "stage": "qualification",
        "amount": "48000.0", "expected_close": "2024-07-01", "source": "Web"}
    assert mapped.events[1]["occurred_at"] == "2024-05-02T08:00:00+00:00"


def test_an_update_maps_only_its_changed_fields() -> None:
    message = {"ChangeEventHeader": header("UPDATE", fields=["StageName", "Amount",
                                                               "LastModifiedDate"]),
               "StageName": "Proposal/Price Quote", "Amount": 52000,
               "LastModifiedDate": "2024-05-02T08:00:00.000Z"}
    mapped = map_change_event(message, DEFAULTS["salesforce"])
    assert [(e["type"], e["data"]) for e in mapped.events] == [
        ("deal.amount_changed", {"deal_id": OPP, "amount": "52000"}),
        ("deal.stage_changed", {"deal_id": OPP, "stage": "proposal"})]


def test_closed_won_and_closed_lost_close_the_deal() -> None:
    won = map_change_event({"ChangeEventHeader": header(
        "UPDATE", fields=["StageName", "IsClosed", "IsWon"]), "StageName": "Closed Won",
        "IsClosed": True, "IsWon": True}, DEFAULTS["salesforce"])
    lost = map_change_event({"ChangeEventHeader": header(
        "UPDATE", fields=["IsClosed"], sequence=2), "IsClosed": True, "IsWon": False},
        DEFAULTS["salesforce"])
    assert [e["type"] for e in won.events] == ["deal.won"]
    assert [e["type"] for e in lost.events] == ["deal.lost"]


def test_one_change_event_for_several_records_maps_each_and_a_replay_is_the_same() -> None:
    other = "0065e00000Xy1AcAAJ"
    message = {"ChangeEventHeader": header("UPDATE", fields=["CloseDate"],
                                           records=[OPP, other]), "CloseDate": "2024-08-15"}
    first = map_change_event(message, DEFAULTS["salesforce"])
    again = map_change_event(message, DEFAULTS["salesforce"])
    assert [e["data"]["deal_id"] for e in first.events] == [OPP, other]
    assert {e["data"]["expected_close"] for e in first.events} == {"2024-08-15"}
    assert [e["id"] for e in first.events] == [e["id"] for e in again.events]
    assert len({e["id"] for e in first.events}) == 2


def test_a_completed_task_on_an_opportunity_is_an_activity() -> None:
    task = {"ChangeEventHeader": header("UPDATE", "Task", ["Status", "IsClosed"],
                                        records=["00T5e00000AbCdEEA1"]),
            "Status": "Completed", "IsClosed": True, "TaskSubtype": "Call",
            "WhatId": OPP, "OwnerId": "0055e000001AbcdAAC", "CallDurationInSeconds": 600}
    mapped = map_change_event(task, parse_mapping("salesforce", {
        "owners": {"0055e000001AbcdAAC": "rep-1"}}))
    assert [e["type"] for e in mapped.events] == ["activity.logged"]
    assert mapped.events[0]["data"] == {"activity_id": "00T5e00000AbCdEEA1", "kind": "call",
                                        "rep_id": "rep-1", "deal_id": OPP, "duration_min": 10}


def test_deletes_gaps_unknown_stages_and_orphan_tasks_are_dead_lettered() -> None:
    mapping = DEFAULTS["salesforce"]
    cases = [
        {"ChangeEventHeader": header("DELETE")},
        {"ChangeEventHeader": header("GAP_UPDATE")},
        {"ChangeEventHeader": header("UPDATE", fields=["StageName"]), "StageName": "Dreaming"},
        {"ChangeEventHeader": header("CREATE", "Task", records=["00T1"]), "Status": "Completed",
         "WhatId": "a015e00000Custom", "OwnerId": "005X"},
        {"ChangeEventHeader": {**header("CREATE"), "commitTimestamp": "yesterday"}},
        "not an object",
    ]
    for message in cases:
        mapped = map_change_event(message, mapping)
        assert mapped.dead and not mapped.events, message
    lead = map_change_event({"ChangeEventHeader": header("CREATE", "Lead")}, mapping)
    assert lead.skipped


def test_the_cdc_topics_setting_names_a_tenant_per_topic() -> None:
    import pytest

    from services.connectors.consumer import cdc_topics
    from services.settings import Settings

    assert cdc_topics(Settings(salesforce_cdc_topics=" sf.acme=acme, sf.beta=beta ")) == {
        "sf.acme": "acme", "sf.beta": "beta"}
    assert cdc_topics(Settings()) == {}
    with pytest.raises(ValueError, match="sf.acme"):
        cdc_topics(Settings(salesforce_cdc_topics="sf.acme"))
