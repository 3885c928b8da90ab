"""What views derive from a `Columns` and keep until the records it depends on change.

Kept beside the columns, not on them, so that a checkpoint never carries it; a column
store loaded again is a new object, and what was kept for the old one goes with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
_KEPT: weakref.WeakKeyDictionary[Any, dict[Hashable, tuple[Hashable, Any]]] = \
    weakref.WeakKeyDictionary()


def kept(owner: object, what: Hashable, version: Hashable, make: Callable[[], T]) -> T:
    """`owner`'s `what` as made for `version`, made again (by `make`) when that changed."""
    mine = _KEPT.get(owner)
    if mine is None:
        mine = _KEPT[owner] = {}
    found = mine.get(what)
    if found is None or found[0] != version:
        found = mine[what] = (version, make())
    made: T = found[1]
    return made
