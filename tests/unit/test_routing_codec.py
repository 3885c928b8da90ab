"""A tenant's routing survives its JSON form, secrets sealed, and bad documents name the field."""

from __future__ import annotations

from datetime import time

import pytest

from alerts.notify import Channel, Recipient
from alerts.routing import Escalation, QuietHours, Route, Routing
from alerts.routing_codec import RoutingInvalid, dump, load


def seal(secret: str) -> str:
    return "sealed:" + secret[::-1]


def unseal(token: str) -> str:
    assert token.startswith("sealed:")
    return token.removeprefix("sealed:")[::-1]


ROUTING = Routing(
    channels=(Channel("sales-bot", "dingtalk", "https://oapi.example/robot?x=1", "SECabc"),
              Channel("inbox", "email", "")),
    routes=(Route("sales-bot", ("owner", "manager"), rules=("stalled_deal",)),
            Route("inbox", ("manager",), severities=("high",))),
    escalations=(Escalation(60, severity="high"), Escalation(240)),
    quiet=QuietHours(start=time(8, 30), end=time(19, 0), working_days=(0, 1, 2, 3, 4, 5)),
    daily_cap=20,
    contacts={"r1": Recipient("r1", "李雷", "zh-CN", "li@example.cn", "13800000000")},
)


def test_routing_round_trips_through_its_json_form() -> None:
    assert load(dump(ROUTING, seal), unseal) == ROUTING


def test_secrets_never_appear_in_clear() -> None:
    doc = dump(ROUTING, seal)
    assert "SECabc" not in repr(doc)
    assert doc["channels"][0]["secret"] == seal("SECabc")


@pytest.mark.parametrize(("doc", "field"), [
    ({"channels": [{"id": "a", "kind": "pager", "target": "x"}]}, "channels[0].kind"),
    ({"channels": [{"id": "a", "kind": "slack", "target": "u"},
                   {"id": "a", "kind": "slack", "target": "v"}]}, "channels"),
    ({"routes": [{"channel": "nowhere", "to": ["owner"]}]}, "routes[0].channel"),
    ({"channels": [{"id": "a", "kind": "slack", "target": "u"}],
      "routes": [{"channel": "a", "to": ["ceo"]}]}, "routes[0].to"),
    ({"escalations": [{"after_minutes": 0}]}, "escalations[0].after_minutes"),
    ({"quiet": {"start": "25:00"}}, "quiet.start"),
    ({"quiet": {"working_days": [7]}}, "quiet.working_days"),
    ({"daily_cap": True}, "daily_cap"),
    ({"contacts": {"r1": {"id": "r1", "name": "A", "language": "fr"}}}, "contacts.r1.language"),
])
def test_a_bad_document_names_its_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(RoutingInvalid) as raised:
        load(doc, unseal)
    assert raised.value.field == field


def test_an_empty_document_is_no_routing() -> None:
    assert load({}, unseal) == Routing()
