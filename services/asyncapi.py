"""The AsyncAPI 3.0 document of the Kafka topics, generated from the contract's models.

One schema per event type (the same pydantic models the ingest API validates with), the
relay's message around them, and the dead-letter and alerts topics. Served by the API at
`GET /v1/asyncapi.json` and written by `salespulse docs`.
"""

from __future__ import annotations

from typing import Any

from events.contract import EVENT_TYPES, event_model
from projections.facts import MESSAGE_SCHEMA
from services import signing
from services.api.problems import Problem
from services.settings import Settings

REF = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    """Every event type's schema, with nested models hoisted to components."""
    schemas: dict[str, Any] = {}
    for event_type in EVENT_TYPES:
        schema = event_model(event_type).model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[schema["title"]] = schema
    return schemas


def document(settings: Settings) -> dict[str, Any]:
    schemas = _schemas()
    schemas["Problem"] = Problem.model_json_schema()
    event_refs = [{"$ref": REF.format(model=event_model(t).__name__)} for t in EVENT_TYPES]
    schemas["RelayedEvent"] = {
        "type": "object",
        "description": "One stored event as the relay publishes it, keyed by its aggregate id. "
                       "Delivery is at least once: consumers skip a (kind, key, version) "
                       "they have applied.",
        "required": ["position", "kind", "key", "version", "event"],
        "properties": {
            "position": {"type": "integer", "minimum": 1,
                         "description": "The event store's notification id (total order)"},
            "schema": {"type": "integer", "minimum": 1, "maximum": MESSAGE_SCHEMA,
                       "description": "The message format's version; readers dead-letter "
                                      "a newer one"},
            "previous": {"type": "integer", "minimum": 0,
                         "description": "The position the relay published just before this "
                                        "one (0 for the first): a reader merging partitions "
                                        "has everything earlier once it has that one"},
            "kind": {"type": "string", "description": "Aggregate kind: lead, deal, …"},
            "key": {"type": "string", "description": "The aggregate's id in the front end"},
            "version": {"type": "integer", "minimum": 1,
                        "description": "The aggregate's version after this event"},
            "event": {"oneOf": event_refs},
            "relayed_at": {"type": "number", "description": "Unix time of publishing"},
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "salespulse event log", "version": "1",
                 "description": "Every accepted sales event, in order per aggregate; poison "
                                "messages on a dead-letter topic; alerts for managers."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": settings.kafka_bootstrap_servers or "localhost:9092",
                              "protocol": "kafka"}},
        "channels": {
            "events": {
                "address": settings.events_topic,
                "description": f"{settings.kafka_partitions} partitions, keyed by aggregate id",
                "messages": {"relayedEvent": {"$ref": "#/components/messages/RelayedEvent"}},
            },
            "deadLetters": {
                "address": settings.dead_letter_topic,
                "description": "Messages the projector could not use, unchanged, with a "
                               "`reason` header",
                "messages": {"deadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
            "alerts": {
                "address": settings.alerts_topic,
                "messages": {"alert": {"$ref": "#/components/messages/Alert"}},
            },
            "ingest": {
                "address": settings.ingest_topic,
                "description": "Contract events from front ends that speak Kafka, one per "
                               "message, checked and stored as POST /v1/events/batch does "
                               "(`salespulse connectors`); the tenant in the envelope's "
                               "`tenant` or a `tenant` header",
                "messages": {"contractEvent": {"$ref": "#/components/messages/ContractEvent"}},
            },
            "ingestRefused": {
                "address": settings.ingest_refused_topic,
                "description": "Each refused ingest message: the problem the API would answer "
                               "and the original message",
                "messages": {"refusal": {"$ref": "#/components/messages/IngestRefusal"}},
            },
        },
        "operations": {
            "relayEvents": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "projectEvents": {"action": "receive", "channel": {"$ref": "#/channels/events"}},
            "deadLetter": {"action": "send", "channel": {"$ref": "#/channels/deadLetters"}},
            "publishAlerts": {"action": "send", "channel": {"$ref": "#/channels/alerts"}},
            "ingestEvents": {"action": "receive", "channel": {"$ref": "#/channels/ingest"}},
            "refuseIngest": {"action": "send",
                             "channel": {"$ref": "#/channels/ingestRefused"}},
        },
        "components": {
            "schemas": schemas,
            "messages": {
                "RelayedEvent": {"name": "RelayedEvent",
                                 "headers": {"type": "object", "properties": {
                                     signing.HEADER: {
                                         "type": "string", "description":
                                         "16 bytes: BLAKE2b of the payload keyed with "
                                         "EVENTS_SIGNING_KEY; absent when no key is set"}}},
                                 "payload": {"$ref": "#/components/schemas/RelayedEvent"}},
                "DeadLetter": {"name": "DeadLetter",
                               "headers": {"type": "object",
                                           "properties": {"reason": {"type": "string"}}},
                               "payload": {"description": "the original bytes"}},
                "Alert": {"name": "Alert", "payload": {"type": "object",
                          "description": "An alert transition; see GET /v1/alerts"}},
                "ContractEvent": {"name": "ContractEvent",
                                  "headers": {"type": "object", "properties": {
                                      "tenant": {"type": "string"}}},
                                  "payload": {"oneOf": event_refs}},
                "IngestRefusal": {"name": "IngestRefusal", "payload": {
                    "type": "object", "required": ["problem", "message"], "properties": {
                        "problem": {"$ref": "#/components/schemas/Problem"},
                        "message": {"type": "object", "description":
                                    "the original message: `value` (or `value_base64`), "
                                    "`topic`, `partition`, `offset`, `key`, `headers`"}}}},
            },
        },
    }
