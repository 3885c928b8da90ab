"""The AsyncAPI document generated from the code describes the messages really on the topic."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Stack, wait_until
from tests.history import simulated
from tests.integration.test_event_path import read_topic

pytestmark = pytest.mark.integration


def validator(document: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """Validates against one schema of the document, its `$ref`s resolved in the document."""
    root = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:asyncapi", root)
    return Draft202012Validator({"$ref": f"urn:asyncapi#/components/schemas/{schema_name}"},
                                registry=registry)


def test_every_message_on_the_events_topic_matches_the_asyncapi_document(
        stack: Stack, broker: Any) -> None:
    events = simulated(seed=8, days=20)
    stack.post(events)
    with stack.client() as client:
        document = client.get("/v1/asyncapi.json").json()
        openapi = client.get("/openapi.json").json()
    assert document["channels"]["events"]["address"] == stack.env["EVENTS_TOPIC"]
    assert "/v1/asyncapi.json" in openapi["paths"]

    messages = wait_until(lambda: (m := read_topic(broker.bootstrap_servers,
                                                   stack.env["EVENTS_TOPIC"], raw=True))
                          and len(m) >= len(events) and m, message="every event on the topic")
    check = validator(document, "RelayedEvent")
    types = set()
    for raw in messages:
        body = orjson.loads(raw)
        errors = [e.message for e in check.iter_errors(body)]
        assert not errors, (body, errors[:3])
        types.add(body["event"]["type"])
    assert len(types) >= 15  # the simulated history exercises nearly every event type

    broken = orjson.loads(messages[0])
    del broken["event"]["occurred_at"]
    assert list(check.iter_errors(broken)), "a message without occurred_at must not validate"
