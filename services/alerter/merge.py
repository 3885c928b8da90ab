"""The partitions of the events topic merged back into the relay's global order, as the
alerter must see them: rules join subjects that live on different partitions."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
import structlog
from aiokafka import ConsumerRecord, TopicPartition

from projections.facts import Change
from services.alerter.place import place_of
from services.messages import decode
from services.signing import Signer

log = structlog.get_logger("alerter")


class Relayed(NamedTuple):
    """A relayed message, decoded once: its change and the position published before it;
    its offset (where a checkpoint resumes) and whether its tenant is this alerter's (one
    that is not only keeps its place in the order: `change` holds its position alone)."""

    change: Change
    previous: int | None
    offset: int = -1
    owned: bool = True


class PartitionMerge:
    """Messages of several partitions in the relay's order. Each message names the position
    published just before it (`previous`), so one is taken only after its predecessor, even
    when its partition looks caught up while the predecessor is still on its way to
    another; copies the relay published again after a crash are dropped. Messages without
    `previous` (and the first one read, when the log does not start at 0) fall back to
    holding back while a lagging partition has nothing buffered.

    Each message is decoded once, as it is added; one the relay signed is not checked
    against the contract again (`services.messages.decode`), any other is, and poison is
    counted and dropped there, so it takes no part in the order."""

    def __init__(self, partitions: list[TopicPartition], signer: Signer | None = None,
                 owns: Callable[[str], bool] | None = None) -> None:
        self.buffers: dict[TopicPartition, deque[Relayed]] = {tp: deque() for tp in partitions}
        self.signer = signer
        self.owns = owns  # None: every tenant is this alerter's
        self.last: int | None = None  # position of the last message taken
        self.unreadable = 0  # poison messages skipped (the projector dead-letters them)

    def add(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        for tp, records in batch.items():
            buffer = self.buffers[tp]
            for record in records:
                relayed = _relayed(record, self.signer, self.owns)
                if relayed is None:
                    self.unreadable += 1  # a poison message must not stop alerts
                else:
                    buffer.append(relayed)

    def take(self, lagging: set[TopicPartition]) -> list[Change]:
        out: list[Change] = []
        while True:
            heads = [(buffer[0].change.position, tp)
                     for tp, buffer in self.buffers.items() if buffer]
            if not heads:
                return out
            position, tp = min(heads, key=lambda h: h[0])
            if self.last is not None and position <= self.last:
                self.buffers[tp].popleft()  # published again after a relay crash
                continue
            previous = self.buffers[tp][0].previous
            if previous is not None and (self.last is not None or previous == 0):
                if previous > (self.last or 0):
                    return out  # its predecessor has not arrived yet
            elif any(not self.buffers[t] for t in lagging):
                return out
            taken = self.buffers[tp].popleft()
            if taken.owned:
                out.append(taken.change)
            self.last = position

    def unread(self) -> dict[TopicPartition, int]:
        """The offset of the first message not yet taken, of each partition holding one."""
        return {tp: buffer[0].offset for tp, buffer in self.buffers.items() if buffer}


class _Previous(msgspec.Struct):
    previous: int | None = None


_PREVIOUS = msgspec.json.Decoder(_Previous)


def _relayed(record: ConsumerRecord[Any, Any], signer: Signer | None,
             owns: Callable[[str], bool] | None = None) -> Relayed | None:
    """The change of a relayed message that keeps the contract, with its predecessor's
    position; None for anything else. A poison message must not take part in the order:
    its position would hold back or skip the real ones. Another alerter's tenant's message
    the relay signed is read only for its place (`services.alerter.place`)."""
    raw = record.value or b""
    stored = signer is not None and signer.signed(raw, record.headers)
    if owns is not None and stored and (where := place_of(raw)) is not None \
            and not owns(where.tenant):
        place = Change(where.position, where.tenant, "", "", 0, {})
        return Relayed(place, where.previous, record.offset, owned=False)
    try:
        change = decode(raw, stored=stored)
        owned = owns is None or owns(change.tenant)
        return Relayed(change, _PREVIOUS.decode(raw).previous, record.offset, owned)
    except (ValueError, msgspec.DecodeError):  # garbage, another shape or version
        log.warning("alerter.unreadable", partition=record.partition, offset=record.offset)
        return None
