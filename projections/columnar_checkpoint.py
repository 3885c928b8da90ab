"""A tenant's `Columns` as a checkpoint: its numpy arrays apart (each a file the API maps
into memory), everything else as one pickle that refers to them. Pure: no I/O; the
files are written and read by `services/api/checkpoints.py`.

Generic: every array the columns hold, wherever it lives (tables, string pools, key
indexes, columns added later), is found by the pickler, not by a list kept here. What a
checkpoint may be loaded into is told by `layout()`: the shape of an empty `Columns` of
the running code, so a checkpoint of other code is never taken for this one's.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns

FORMAT = 1
INLINE_BYTES = 4096  # smaller arrays stay in the pickle: a file each would cost more


@dataclass(frozen=True)
class ArrayInfo:
    dtype: str
    shape: tuple[int, ...]

    def matches(self, array: NDArray[Any]) -> bool:
        return array.dtype.str == self.dtype and array.shape == self.shape


@dataclass
class Encoded:
    """The pickle of the columns' Python state, and the arrays it refers to by number."""

    state: bytes
    arrays: list[NDArray[Any]]

    def infos(self) -> list[ArrayInfo]:
        return [ArrayInfo(a.dtype.str, tuple(a.shape)) for a in self.arrays]


class CheckpointError(Exception):
    """A checkpoint that does not fit the running code or is damaged: load everything."""


def _restore_columns(state: dict[str, Any]) -> Columns:
    columns = Columns.__new__(Columns)
    vars(columns).update(state)
    return columns


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, inline_bytes: int) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.inline_bytes = max(inline_bytes, 1)  # an empty array cannot be mapped
        self.arrays: list[NDArray[Any]] = []
        self._ids: dict[int, int] = {}  # id(array) -> its number: aliases stay aliases

    def persistent_id(self, obj: Any) -> int | None:
        if (type(obj) is not np.ndarray and not isinstance(obj, np.memmap)) \
                or obj.dtype.hasobject or obj.nbytes < self.inline_bytes:
            return None
        found = self._ids.get(id(obj))
        if found is None:
            found = self._ids[id(obj)] = len(self.arrays)
            self.arrays.append(np.ascontiguousarray(obj))
        return found

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is Columns:
            # Joined dimensions are a cache (and views of columns): made again when asked.
            state = {**vars(obj), "_joined": OrderedDict(), "dirty": True}
            return _restore_columns, (state,)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, array: Callable[[int], NDArray[Any]]) -> None:
        super().__init__(file)
        self._array = array

    def persistent_load(self, pid: Any) -> NDArray[Any]:
        if not isinstance(pid, int):
            raise CheckpointError(f"unknown reference {pid!r}")
        return self._array(pid)


def encode(columns: Columns, inline_bytes: int = INLINE_BYTES) -> Encoded:
    """The columns as a pickle and the arrays of `inline_bytes` or more it refers to (not
    copies where contiguous); smaller ones, and arrays of Python objects, are in it."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, inline_bytes)
    pickler.dump(columns)
    return Encoded(buffer.getvalue(), pickler.arrays)


def decode(state: bytes, infos: list[ArrayInfo],
           array: Callable[[int], NDArray[Any]]) -> Columns:
    """The columns back; `array(n)` gives array n (e.g. mapped from its file), checked
    against what the checkpoint's manifest says it is."""
    def checked(number: int) -> NDArray[Any]:
        if not 0 <= number < len(infos):
            raise CheckpointError(f"array {number} is not in the manifest")
        found = array(number)
        if not infos[number].matches(found):
            raise CheckpointError(f"array {number} is {found.dtype.str}{found.shape}, "
                                  f"the manifest says {infos[number]}")
        return found

    try:
        columns = _Unpickler(io.BytesIO(state), checked).load()
    except CheckpointError:
        raise
    except Exception as exc:  # a damaged pickle raises any of a dozen kinds
        raise CheckpointError(f"the columns' state does not load: {exc!r}") from exc
    if type(columns) is not Columns:
        raise CheckpointError(f"the checkpoint holds a {type(columns).__name__}")
    return columns


def layout() -> str:
    """A digest of what the running code's `Columns` is made of (its attributes, tables,
    columns and their types): a checkpoint of a different layout is not loaded."""
    parts: list[str] = []
    _describe(Columns(), "columns", parts, set())
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:16]


def _describe(obj: Any, path: str, parts: list[str], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        parts.append(f"{path}: ndarray {obj.dtype.str} {obj.ndim}")
        return
    parts.append(f"{path}: {type(obj).__module__}.{type(obj).__qualname__}")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str):
                _describe(value, f"{path}[{key}]", parts, seen)
    elif type(obj).__module__.startswith("projections.") and hasattr(obj, "__dict__"):
        for name, value in vars(obj).items():
            _describe(value, f"{path}.{name}", parts, seen)
