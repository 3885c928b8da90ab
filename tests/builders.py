"""Contract events written by hand in tests: each gets an id of its own unless given one."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count()


def unique() -> int:
    """A number no other call returns: for the ids of activities, orders, payments."""
    return next(_ids)


def ev(type_: str, at: str, *, id: str | None = None, **data: Any) -> dict[str, Any]:
    return {"id": id or f"evt-{next(_ids)}", "type": type_, "occurred_at": at, "data": data}
