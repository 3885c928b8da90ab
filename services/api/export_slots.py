"""How many exports one API process streams at once.

A streamed export holds copies of the columns its rows need until its client has read the
last chunk: some 100 MB for every deal of a tenant of 1M deals. Unbounded, a handful of
spreadsheet downloads at once could take more memory than the process has; past the
bound an export is refused (503, try again) rather than queued, since a queued one would
hold its connection and, once started, its copies all the same.

A slot is held from before the copy until the stream ends: its last chunk read, the
iterator closed, or dropped unread (a client that hung up before the first chunk).
Chunks are pulled in worker threads: the count of slots held is kept under a lock.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class ExportSlots:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.held = 0
        self._lock = threading.Lock()

    def take(self) -> Slot | None:
        """A slot, or None when every one is held."""
        with self._lock:
            if self.held >= self.slots:
                return None
            self.held += 1
        return Slot(self._give_back)

    def _give_back(self) -> None:
        with self._lock:
            self.held -= 1


class Slot:
    """One held slot: given back once, however the export ends."""

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._given_back = weakref.finalize(self, give_back)

    def give_back(self) -> None:
        self._given_back()  # a finalizer runs once: later calls do nothing

    def holding(self, chunks: Iterator[T]) -> HeldChunks[T]:
        """`chunks`, with the slot given back when they end or are dropped."""
        return HeldChunks(chunks, self)


class HeldChunks(Iterator[T]):
    """Chunks read while a slot is held."""

    def __init__(self, chunks: Iterator[T], slot: Slot) -> None:
        self._chunks, self._slot = chunks, slot  # dropped with this iterator: the slot too

    def __next__(self) -> T:
        try:
            return next(self._chunks)
        except BaseException:
            self._slot.give_back()
            raise

    def close(self) -> None:
        self._slot.give_back()
