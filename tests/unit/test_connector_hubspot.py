"""HubSpot webhooks as contract events: payloads and signatures as HubSpot documents them
(developers.hubspot.com, "Webhooks API" and "Validating requests": a JSON array of
notifications; v3 = base64 HMAC-SHA256 of method + URI + body + timestamp)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from services.connectors import hubspot
from services.connectors.mapping import DEFAULTS, parse_mapping

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
NOW_MS = 1_700_000_000_000


def notification(event_id: int, kind: str, object_id: int = 1246965, **extra: object) -> dict:
    return {"eventId": event_id, "subscriptionId": 25, "portalId": 33, "appId": 1160452,
            "occurredAt": 1_699_999_990_000, "subscriptionType": kind, "attemptNumber": 0,
            "objectId": object_id, "changeSource": "CRM", "changeFlag": "NEW", **extra}


def hubspot_signature(method: str, uri: str, body: bytes, timestamp: str) -> str:
    """As HubSpot's docs state it, written out independently of the code under test."""
    source = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(SECRET.encode(), source, hashlib.sha256).digest()).decode()


def test_a_request_signed_as_hubspot_signs_is_verified() -> None:
    body = json.dumps([notification(1, "deal.creation")]).encode()
    uri = "https://crm.example.com/v1/connectors/hubspot"
    signature = hubspot_signature("POST", uri, body, str(NOW_MS - 1000))
    assert hubspot.verify_v3(SECRET, "POST", uri, body, str(NOW_MS - 1000), signature,
                             NOW_MS) is None


def test_the_uri_is_signed_with_hubspots_listed_characters_decoded() -> None:
    body = b"[]"
    sent = "https://crm.example.com/v1/connectors/hubspot?tag=a%3Ab%2Cc&q=%20x"
    signature = hubspot_signature(
        "POST", "https://crm.example.com/v1/connectors/hubspot?tag=a:b,c&q=%20x", body,
        str(NOW_MS))
    assert hubspot.verify_v3(SECRET, "POST", sent, body, str(NOW_MS), signature, NOW_MS) is None


def test_a_tampered_body_a_wrong_secret_or_a_stale_timestamp_is_refused() -> None:
    body = json.dumps([notification(1, "deal.creation")]).encode()
    uri = "https://crm.example.com/v1/connectors/hubspot"
    fresh = str(NOW_MS - 1000)
    good = hubspot_signature("POST", uri, body, fresh)
    assert hubspot.verify_v3(SECRET, "POST", uri, body + b" ", fresh, good, NOW_MS)
    assert hubspot.verify_v3("other", "POST", uri, body, fresh, good, NOW_MS)
    stale = str(NOW_MS - 5 * 60 * 1000 - 1)
    assert "older than 5 minutes" in str(hubspot.verify_v3(
        SECRET, "POST", uri, body, stale, hubspot_signature("POST", uri, body, stale), NOW_MS))
    assert hubspot.verify_v3(SECRET, "POST", uri, body, None, good, NOW_MS)


def test_a_creation_and_its_property_changes_make_a_deal_in_its_stage_and_owner() -> None:
    batch = [notification(1, "deal.creation"),
             notification(2, "deal.propertyChange", propertyName="dealstage",
                          propertyValue="qualifiedtobuy"),
             notification(3, "deal.propertyChange", propertyName="amount",
                          propertyValue="1500.50"),
             notification(4, "deal.propertyChange", propertyName="closedate",
                          propertyValue="1702166400000"),
             notification(5, "deal.propertyChange", propertyName="hubspot_owner_id",
                          propertyValue="41000123")]
    mapped = hubspot.map_batch(batch, DEFAULTS["hubspot"])
    kinds = [[e["type"] for e in m.events] for m in mapped]
    assert kinds == [["rep.joined", "deal.created"], ["deal.stage_changed"],
                     ["deal.amount_changed"], ["deal.close_date_changed"],
                     ["rep.joined", "deal.owner_changed"]]
    created = mapped[0].events[1]
    assert created["data"] == {"deal_id": "1246965", "owner_id": "unassigned"}
    assert created["occurred_at"] == "2023-11-14T22:13:10+00:00"
    assert mapped[1].events[0]["data"]["stage"] == "qualification"
    assert mapped[2].events[0]["data"]["amount"] == "1500.50"
    assert mapped[3].events[0]["data"]["expected_close"] == "2023-12-10"
    assert mapped[4].events[1]["data"]["owner_id"] == "41000123"
    assert mapped[4].events[0]["data"] == {"rep_id": "41000123", "name": "41000123",
                                           "team_id": "crm"}


def test_a_retry_gives_the_same_event_ids_and_another_change_another() -> None:
    first = notification(7, "deal.propertyChange", propertyName="dealstage",
                         propertyValue="closedwon")
    retry = {**first, "attemptNumber": 3}
    other = {**first, "objectId": 99}
    ids = [[e["id"] for e in hubspot.map_notification(n, DEFAULTS["hubspot"]).events]
           for n in (first, retry, other)]
    assert ids[0] == ids[1] != ids[2]
    assert len(ids[0][0]) <= 128


def test_won_and_lost_stages_close_the_deal() -> None:
    won = hubspot.map_notification(notification(1, "deal.propertyChange",
                                                propertyName="dealstage",
                                                propertyValue="closedwon"), DEFAULTS["hubspot"])
    lost = hubspot.map_notification(notification(2, "deal.propertyChange",
                                                 propertyName="dealstage",
                                                 propertyValue="closedlost"), DEFAULTS["hubspot"])
    assert [e["type"] for e in won.events + lost.events] == ["deal.won", "deal.lost"]


def test_the_tenants_mapping_names_stages_and_owners() -> None:
    mapping = parse_mapping("hubspot", {"stages": {"1234567": "proposal"},
                                        "owners": {"41000123": "rep-7"}, "won": ["9"]})
    stage = hubspot.map_notification(notification(1, "deal.propertyChange",
                                                  propertyName="dealstage",
                                                  propertyValue="1234567"), mapping)
    owner = hubspot.map_notification(notification(2, "deal.propertyChange",
                                                  propertyName="hubspot_owner_id",
                                                  propertyValue="41000123"), mapping)
    assert stage.events[0]["data"]["stage"] == "proposal"
    assert [e["type"] for e in owner.events] == ["deal.owner_changed"]  # rep-7 exists
    assert owner.events[0]["data"]["owner_id"] == "rep-7"


def test_what_cannot_be_mapped_is_dead_lettered_and_what_is_not_tracked_skipped() -> None:
    mapping = DEFAULTS["hubspot"]
    unknown_stage = hubspot.map_notification(notification(
        1, "deal.propertyChange", propertyName="dealstage", propertyValue="9999"), mapping)
    deleted = hubspot.map_notification(notification(2, "deal.deletion"), mapping)
    bad_amount = hubspot.map_notification(notification(
        3, "deal.propertyChange", propertyName="amount", propertyValue="lots"), mapping)
    no_time = hubspot.map_notification({**notification(4, "deal.creation"),
                                        "occurredAt": "soon"}, mapping)
    contact = hubspot.map_notification(notification(5, "contact.creation"), mapping)
    custom = hubspot.map_notification(notification(
        6, "deal.propertyChange", propertyName="deal_color", propertyValue="red"), mapping)
    for dead in (unknown_stage, deleted, bad_amount, no_time):
        assert dead.dead and not dead.events, dead
    assert "9999" in str(unknown_stage.dead)
    assert contact.skipped and custom.skipped and not contact.events and not custom.events
