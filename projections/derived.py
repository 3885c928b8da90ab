"""What views derive from a `Columns` and keep until the records it depends on change.

Kept beside the columns, not on them, so that a checkpoint never carries it; a column
store loaded again is a new object, and what was kept for the old one goes with it.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
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


def kept_for(owner: object, what: Hashable, version: Hashable, question: Hashable,
             make: Callable[[], T], most: int) -> T:
    """`make()`'s result for `question`, kept with the results of the `most` questions
    asked last while `owner`'s `version` holds (for `what`): what a dashboard asks again
    at its next `as_of`."""
    asked: OrderedDict[Hashable, T] = kept(owner, what, version, OrderedDict)
    if question in asked:
        asked.move_to_end(question)
        return asked[question]
    made = asked[question] = make()
    while len(asked) > most:
        asked.popitem(last=False)
    return made
