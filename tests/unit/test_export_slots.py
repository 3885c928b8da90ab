"""Export slots are taken up to the bound and given back once however the stream ends:
read to its end, failed, closed, or dropped before its first chunk."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.api.export_slots import ExportSlots


def chunks(n: int) -> Iterator[bytes]:
    yield from (b"x" for _ in range(n))


def test_past_the_bound_no_slot_is_given() -> None:
    slots = ExportSlots(2)
    first, second = slots.take(), slots.take()
    assert first is not None and second is not None
    assert slots.take() is None
    assert slots.held == 2


def test_a_stream_read_to_its_end_gives_its_slot_back() -> None:
    slots = ExportSlots(1)
    slot = slots.take()
    assert slot is not None
    stream = slot.holding(chunks(3))
    assert next(stream) == b"x" and slots.held == 1
    assert list(stream) == [b"x", b"x"]
    assert slots.held == 0 and slots.take() is not None


def test_a_stream_that_fails_gives_its_slot_back_once() -> None:
    def failing() -> Iterator[bytes]:
        yield b"x"
        raise OSError("disk")

    slots = ExportSlots(1)
    slot = slots.take()
    assert slot is not None
    stream = slot.holding(failing())
    next(stream)
    with pytest.raises(OSError):
        next(stream)
    slot.give_back()  # again: nothing more is given back
    assert slots.held == 0


def test_a_stream_closed_or_dropped_unread_gives_its_slot_back() -> None:
    slots = ExportSlots(1)
    closed = slots.take()
    assert closed is not None
    closed.holding(chunks(3)).close()
    assert slots.held == 0
    dropped = slots.take()
    assert dropped is not None
    stream = dropped.holding(chunks(3))
    del dropped, stream  # a client that hung up before the first chunk
    gc.collect()
    assert slots.held == 0
