"""The deal export over `Columns`: the rows `export.py` gives over a `Snapshot` (a test holds
them byte-identical), in numpy, then one dictionary per selected deal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np

from projections.columnar import NOW, Columns
from projections.columnar_views import as_decimal
from projections.export import DEAL_COLUMNS
from projections.snapshot import Filters

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(moment: int, offset: int) -> str:
    """Microseconds since the epoch, as the instant was written (its offset)."""
    zone = timezone(timedelta(seconds=offset))
    return (_EPOCH + timedelta(microseconds=moment)).astimezone(zone).isoformat()


def deal_rows(columns: Columns, filters: Filters) -> list[dict[str, Any]]:
    d = columns.deals
    keys = d.keys
    assert keys is not None
    rows = np.flatnonzero(columns.select("deal", filters.dims, filters.start, filters.end,
                                         day="created_day"))
    ids = [keys.key(int(row)) for row in rows]
    created = d["created"][rows].tolist()
    order = sorted(range(len(ids)), key=lambda i: (created[i], ids[i]))
    facts = columns.deal_facts.of(d.size)
    values = columns.strings.values
    dims = {name: columns.dim("deal", name)[rows].tolist() for name in DEAL_COLUMNS[6:]}
    status, amount = d["status"][rows].tolist(), d["amount"][rows].tolist()
    exponent, closed = d["amount_exp"][rows].tolist(), d["closed"][rows].tolist()
    stage = facts["stage"][rows].tolist()
    created_offset = facts["created_offset"][rows].tolist()
    closed_offset = facts["closed_offset"][rows].tolist()
    out = []
    for i in order:
        out.append({
            "deal_id": ids[i], "status": values[status[i]], "stage": values[stage[i]],
            "amount": str(as_decimal(int(amount[i]), int(exponent[i]))),
            "created_at": _instant(created[i], created_offset[i]),
            "closed_at": _instant(closed[i], closed_offset[i]) if closed[i] != NOW else None,
            **{name: values[codes[i]] for name, codes in dims.items()}})
    return out
