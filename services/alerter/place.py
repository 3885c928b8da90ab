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


class _Place(msgspec.Struct):
    position: int
    event: _Tenant
    previous: int | None = None
    schema: int = 1


_PLACE = msgspec.json.Decoder(_Place)


class Place(NamedTuple):
    """Where a message stands in the relay's order, and whose it is."""

    position: int
    previous: int | None
    tenant: str


def place_of(raw: bytes) -> Place | None:
    """The position, predecessor and tenant of a relayed message; None if it has not that
    shape or is of a schema this reader does not know (the full decoder says why)."""
    try:
        message = _PLACE.decode(raw)
    except msgspec.DecodeError:
        return None
    if not 1 <= message.schema <= MESSAGE_SCHEMA:
        return None
    return Place(message.position, message.previous, message.event.tenant)
