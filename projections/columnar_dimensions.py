"""What can be filtered on, over `Columns`: the answer `dimensions.py` gives over a
`Snapshot` (a test holds them byte-identical), from each table's joined dimensions."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_revenue import order_dims
from projections.dimensions import DIMENSIONS
from projections.snapshot import Filters

_TABLES = ("deal", "lead", "order", "activity")


def _dim(columns: Columns, what: str, name: str) -> NDArray[np.int32]:
    return order_dims(columns, name) if what == "order" else columns.dim(what, name)


def _rows(columns: Columns, what: str) -> NDArray[np.bool_]:
    """The rows of `what` that are subjects (a row only referred to is none)."""
    if what == "activity":
        return np.ones(columns.activities.size, dtype=bool)
    table = columns.orders.orders if what == "order" else columns.table(what)
    return table["exists"].copy()


def dimensions(columns: Columns, within: Filters | None = None) -> dict[str, Any]:
    """`dimensions.dimensions` over the columns."""
    asked = within.dims if within else {}
    strings = columns.strings
    found: dict[str, set[int]] = {name: set() for name in ("rep", *DIMENSIONS)}
    for what in _TABLES:
        keep = _rows(columns, what)
        for name, value in asked.items():
            keep &= _dim(columns, what, name) == (strings.find(value) or -1)
        for name in found:
            found[name].update(np.unique(_dim(columns, what, name)[keep]).tolist())
    values = {name: {strings.values[code] for code in codes if code}
              for name, codes in found.items()}
    rep_ids = set(columns.rep_records) | values.pop("rep")

    def keeps(dims: dict[str, str | None]) -> bool:
        return all(dims.get(name) == value for name, value in asked.items())
    reps = []
    for rep_id in sorted(r for r in rep_ids if r is not None):
        now = columns.rep_at(rep_id, None)
        if not keeps({"rep": rep_id, **now}):
            continue  # owned a subject in scope once, but is not in scope now
        for name in ("team", "manager", "region"):
            if now[name] is not None:
                values[name].add(now[name])
        record = columns.rep_records.get(rep_id, {})
        reps.append({"id": rep_id, "name": record.get("name"), **now})
    return {"reps": reps, **{name: sorted(v for v in values[name] if v is not None)
                             for name in DIMENSIONS}}
