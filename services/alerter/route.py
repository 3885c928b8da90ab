"""Whose a relayed message is, read without decoding the event: what an alerter that owns
some of the tenants needs of the others' messages (their place in the relay's order).

Only for messages the relay signed: those were checked when they were stored, so their
position and tenant can be trusted without the contract check. Anything else is decoded
in full by the caller, so poison still takes no part in the order."""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from projections.facts import MESSAGE_SCHEMA


class _Tenant(msgspec.Struct):
    tenant: str


class _Route(msgspec.Struct):
    position: int
    event: _Tenant
    previous: int | None = None
    schema: int = 1


_ROUTE = msgspec.json.Decoder(_Route)


class Route(NamedTuple):
    position: int
    previous: int | None
    tenant: str


def route(raw: bytes) -> Route | None:
    """The position, predecessor and tenant of a relayed message; None if it has not that
    shape or is of a schema this reader does not know (the full decoder says why)."""
    try:
        message = _ROUTE.decode(raw)
    except msgspec.DecodeError:
        return None
    if not 1 <= message.schema <= MESSAGE_SCHEMA:
        return None
    return Route(message.position, message.previous, message.event.tenant)
