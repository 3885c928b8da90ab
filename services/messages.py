"""Relayed messages as the read side takes them: decoded, checked, or set aside as poison.

The projector's live path and the rebuild fold the same changes from the same bytes; a
message the relay signed was checked against the contract when it was stored and is not
checked again (`services.signing`), any other message is.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

import orjson

from events.parsing import check_event
from projections.facts import Change
from services.signing import Headers, Signer


def decode(raw: bytes, *, stored: bool = False) -> Change:
    """A relayed message, checked against the contract unless `stored` (signed by the relay,
    so checked by the ledger before it was stored); raises ValueError if unusable."""
    try:
        change = Change.from_json(raw)
        if not stored:
            check_event(change.event, tenant=change.tenant)
    except Exception as exc:  # noqa: BLE001 - any failure to decode makes it a poison message
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return change


class Message(Protocol):
    """What `decode_all` reads of a consumed record (aiokafka's ConsumerRecord has it)."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


def decode_all(records: Iterable[Message], signer: Signer | None
               ) -> tuple[list[Change], list[tuple[bytes, str]]]:
    """The usable changes of a fetch, in order, and the poison messages with their reason."""
    changes: list[Change] = []
    poisoned: list[tuple[bytes, str]] = []
    with gc_paused():
        for record in records:
            raw = record.value or b""
            try:
                changes.append(decode(raw, stored=signer is not None
                                      and signer.signed(raw, record.headers)))
            except ValueError as exc:
                poisoned.append((raw, str(exc)))
    return changes, poisoned


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is folded.

    A batch allocates thousands of JSON dicts, none in a cycle, that refcounting frees when
    the batch is done; meanwhile the collector would walk them again and again.
    Collection resumes after the batch, so nothing cyclic is kept for longer than one
    batch.
    """
    if not gc.isenabled():  # nested, or turned off by someone else: leave it as it is
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def event_id(raw: bytes) -> str | None:
    """The event id in a message, if it has one: what the log names a dead letter by."""
    try:
        return str(orjson.loads(raw)["event"]["id"])
    except Exception:  # noqa: BLE001 - poison has no id
        return None
