"""Subject keys (deal, lead, customer ids) as dense row numbers, in tens of bytes a key.

A `dict[str, int]` costs about 150 bytes a key in CPython (the str object, the int
object, the slot): at 1M deals a tenant has some 5M deal, lead and customer keys, most
of a gigabyte for the keys alone. Here a key costs its 64-bit hash in a sorted array,
its row beside it, and its bytes in one fixed-width column indexed by row; keys added
since the last merge wait in a small dict. A hash match is confirmed against the stored
bytes, so two keys that share a hash never share a row: the second one, like a key too
long or too odd for the bytes column, is kept in a plain dict instead.

Pure: no I/O. Rows are handed out from `FIRST_ROW` in order of first sight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FIRST_ROW = 2  # 0 stands for "no key" and 1 stays empty (a table's reserved rows)
MAX_WIDTH = 64  # longer keys live in the plain dict (rare: ids are short)
MERGE_AT = 1 << 16  # new keys kept in the dict before they join the sorted arrays


@dataclass(frozen=True)
class TakenKeys:
    """Some rows' keys, in the order asked for, apart from the index they came from."""

    stored: NDArray[np.bytes_]
    apart: dict[int, str]  # by position: keys the bytes column does not hold

    def __len__(self) -> int:
        return len(self.stored)

    def texts(self, start: int, stop: int) -> list[str]:
        """The keys at positions `start`..`stop` (exclusive) as text."""
        out = [raw.decode() for raw in self.stored[start:stop].tolist()]
        for at, key in self.apart.items():
            if start <= at < stop:
                out[at - start] = key
        return out


class KeyIndex:
    def __init__(self, hasher: Callable[[str], int] = hash) -> None:
        # `hash` of a str: SipHash, 64 bits, cached on the object; randomised per process,
        # which is fine for an index that never leaves it. Tests pass a colliding one.
        self._hash = hasher
        self._sorted_hashes: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._sorted_rows: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._recent: dict[int, int] = {}  # hash -> row, not merged yet
        self._bytes: NDArray[np.bytes_] = np.zeros(1024, dtype="S8")  # by row
        self._odd: dict[str, int] = {}  # key -> row: hash taken, too long, or with NUL
        self._odd_keys: dict[int, str] = {}
        self.size = FIRST_ROW  # the next row

    def rows(self, keys: Sequence[str | None]) -> list[int]:
        """Each key's row (0 for a missing or empty key), new keys getting the next rows."""
        out = [0] * len(keys)
        present = [i for i, key in enumerate(keys) if key]
        if not present:
            return out
        wanted = [keys[i] for i in present]
        hashes = np.fromiter((self._hash(k) for k in wanted), dtype=np.int64,  # type: ignore[arg-type]
                             count=len(wanted))
        candidates, in_sorted = self._candidates(hashes)
        confirmed = self._confirm(wanted, candidates).tolist()
        for j, i in enumerate(present):
            row = confirmed[j]
            out[i] = row or self._add(wanted[j], int(hashes[j]), bool(in_sorted[j]))  # type: ignore[arg-type]
        if len(self._recent) >= MERGE_AT:
            self._merge()
        return out

    def key(self, row: int) -> str:
        """The key of a row given out before."""
        odd = self._odd_keys.get(row)
        return odd if odd is not None else bytes(self._bytes[row]).decode()

    def taken(self, rows: NDArray[np.int64]) -> TakenKeys:
        """The keys of `rows`, copied out: still readable after the index has changed."""
        apart: dict[int, str] = {}
        if self._odd_keys:
            odd = np.isin(rows, np.fromiter(self._odd_keys, dtype=np.int64))
            apart = {i: self._odd_keys[int(rows[i])] for i in np.flatnonzero(odd).tolist()}
        return TakenKeys(self._bytes[rows], apart)

    def sorted_order(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """The order `sorted` puts the keys of `rows` in, without making a str of each:
        the bytewise order of UTF-8 is code point order. Keys kept apart (too long, a
        shared hash, ending in NUL) go the slow way."""
        if self._odd_keys and np.isin(rows, np.fromiter(self._odd_keys, dtype=np.int64)).any():
            names = [self.key(int(row)) for row in rows.tolist()]
            return np.array(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
        return np.argsort(self._bytes[rows], kind="stable").astype(np.int64)

    def reserve(self, rows: int) -> None:
        """Room for the bytes of keys up to row `rows` (a whole load knows how many)."""
        if rows > len(self._bytes):
            self._resize_bytes(rows)

    def trim(self) -> None:
        """Give back the room kept for growth."""
        self._resize_bytes(self.size)

    def nbytes(self) -> int:
        return (self._sorted_hashes.nbytes + self._sorted_rows.nbytes + self._bytes.nbytes
                + 100 * (len(self._recent) + 2 * len(self._odd)))

    # --- pickling (column checkpoints) ------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        # `hash` of a str is randomised per process: the hashes are made again on loading.
        state = dict(vars(self))
        state["_sorted_hashes"] = state["_sorted_rows"] = None
        state["_recent"] = {}  # its keys are in the bytes column too
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        vars(self).update(state)
        rows = np.array([row for row in range(FIRST_ROW, self.size) if row not in self._odd_keys],
                        dtype=np.int32)
        hashes = np.fromiter((self._hash(self.key(row)) for row in rows.tolist()),
                             dtype=np.int64, count=len(rows))
        order = np.argsort(hashes, kind="stable")
        hashes, rows = hashes[order], rows[order]
        # Two keys sharing a hash in this process: the later ones go to the plain dict.
        shared = np.zeros(len(hashes), dtype=bool)
        shared[1:] = hashes[1:] == hashes[:-1]
        for row in rows[shared].tolist():
            key = self.key(row)
            self._odd[key], self._odd_keys[row] = row, key
        self._sorted_hashes, self._sorted_rows = hashes[~shared], rows[~shared]

    # --- inside --------------------------------------------------------------------

    def _candidates(self, hashes: NDArray[np.int64]
                    ) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """The row each hash points at, 0 where none does (not yet confirmed), and whether
        the hash is one of the sorted ones."""
        found = np.zeros(len(hashes), dtype=np.int32)
        hit = np.zeros(len(hashes), dtype=bool)
        if len(self._sorted_hashes):
            at = np.searchsorted(self._sorted_hashes, hashes).clip(0, len(self._sorted_hashes) - 1)
            hit = self._sorted_hashes[at] == hashes
            found[hit] = self._sorted_rows[at[hit]]
        if self._recent:
            for j in np.flatnonzero(found == 0).tolist():
                found[j] = self._recent.get(int(hashes[j]), 0)
        return found, hit

    def _confirm(self, keys: list[str | None], rows: NDArray[np.int32]) -> NDArray[np.int32]:
        """`rows` where the stored key is the key asked for, else 0."""
        hit = np.flatnonzero(rows)
        if hit.size:
            raw = [keys[j].encode() for j in hit.tolist()]  # type: ignore[union-attr]
            # At its own width, so nothing is cut; numpy compares across widths.
            same = self._bytes[rows[hit]] == np.array(raw)
            if any(b.endswith(b"\0") for b in raw):  # numpy drops trailing NULs
                same &= np.array([not b.endswith(b"\0") for b in raw])
            rows = rows.copy()
            rows[hit[~same]] = 0
        # Keys in the plain dict: their hash points elsewhere, or nowhere.
        if self._odd:
            for j in np.flatnonzero(rows == 0).tolist():
                rows[j] = self._odd.get(keys[j], 0)  # type: ignore[arg-type]
        return rows

    def _add(self, key: str, hashed: int, in_sorted: bool) -> int:
        # A key seen twice in one call: its first sighting is in `_recent` or `_odd` now.
        if key in self._odd:
            return self._odd[key]
        known = self._recent.get(hashed)
        if known is not None and self.key(known) == key:
            return known
        row = self.size
        self.size += 1
        self._grow(row + 1)
        raw = key.encode()
        if known is not None or in_sorted or len(raw) > MAX_WIDTH or raw.endswith(b"\0"):
            # numpy drops trailing NUL bytes, so such a key could not be told apart.
            self._odd[key], self._odd_keys[row] = row, key
            return row
        if len(raw) > self._bytes.itemsize:
            self._bytes = self._bytes.astype(f"S{max(len(raw), self._bytes.itemsize * 3 // 2)}")
        self._bytes[row] = raw
        self._recent[hashed] = row
        return row

    def _grow(self, size: int) -> None:
        if size > len(self._bytes):
            self._resize_bytes(max(size, len(self._bytes) * 3 // 2))

    def _resize_bytes(self, rows: int) -> None:
        """In place when nothing else holds the array (no second copy meanwhile; new rows
        zero), else as a copy."""
        try:
            self._bytes.resize(rows, refcheck=True)
        except ValueError:
            resized = np.zeros(rows, dtype=self._bytes.dtype)
            kept = min(rows, len(self._bytes))
            resized[:kept] = self._bytes[:kept]
            self._bytes = resized

    def _merge(self) -> None:
        # Inserted at their places, not sorted again: one pass over the arrays. The dict
        # stays small (a dict entry costs what ten keys here do).
        hashes = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        rows = np.fromiter(self._recent.values(), dtype=np.int32, count=len(self._recent))
        order = np.argsort(hashes)
        at = np.searchsorted(self._sorted_hashes, hashes[order])
        self._sorted_hashes = np.insert(self._sorted_hashes, at, hashes[order])
        self._sorted_rows = np.insert(self._sorted_rows, at, rows[order])
        self._recent = {}
