"""Each deal's stage, amount, owner and expected-close histories in columns: what a deal
was at any moment, for the forecast (`forecast.deal_at`) over the column store.

One entry a row, in each history's list order. A changed deal appends its whole history
again and its `start`/`count` move to the new rows; the old rows are garbage, dropped
when they outnumber the live ones. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from events.vocabulary import ts
from projections.columnar_orders import scaled
from projections.columnar_table import Table, micros
from projections.facts import Record

HISTORIES = ("stage", "amount", "owner", "close")
_VALUE_COLUMNS: dict[str, dict[str, Any]] = {
    "stage": {"stage": np.int32}, "amount": {"amount": np.int64, "amount_exp": np.int8},
    "owner": {"owner": np.int32}, "close": {"day": np.int32},
}


def close_day(value: str | None, tz: ZoneInfo) -> int:
    """`forecast.parse_close_date` as a proleptic ordinal (0: none)."""
    if not value:
        return 0
    try:
        return date.fromisoformat(value).toordinal()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return 0
    return (moment.astimezone(tz).date() if moment.tzinfo else moment.date()).toordinal()


def _entries(r: Record) -> dict[str, list[list[Any]]]:
    """A deal record's histories, with the fallbacks `forecast.deal_at` takes."""
    close_dates = r.get("close_dates")
    if close_dates is None:  # a record folded before close-date history was kept
        close_dates = [[r["created_at"], r["expected_close"]]] if r.get("expected_close") else []
    return {"stage": [[at, stage] for stage, at in r["stages"]],
            "amount": r.get("amounts") or [[r["created_at"], r["amount"]]],
            "owner": r.get("owners") or [[r["created_at"], r["owner"]]],
            "close": close_dates}


class DealHistory:
    """Every deal's four histories; `start[h][deal]`, `count[h][deal]` its live rows."""

    def __init__(self) -> None:
        self.tables = {h: Table({"deal": np.int32, "at": np.int64, **_VALUE_COLUMNS[h]},
                                keyed=False) for h in HISTORIES}
        self.start = {h: np.zeros(16, dtype=np.int64) for h in HISTORIES}
        self.count = {h: np.zeros(16, dtype=np.int64) for h in HISTORIES}

    def put_many(self, rows: list[int], records: list[Record],
                 code: Callable[[str | None], int], tz: ZoneInfo) -> None:
        """Take deals' latest histories (`rows`: their deal rows)."""
        need = max(rows) + 1
        for h in HISTORIES:
            if need > len(self.start[h]):
                size = max(need, len(self.start[h]) * 2)
                self.start[h] = np.resize(self.start[h], size)
                self.count[h] = np.resize(self.count[h], size)
                self.start[h][need:] = 0
                self.count[h][need:] = 0
        new: dict[str, dict[str, list[Any]]] = {
            h: {name: [] for name in ("deal", "at", *_VALUE_COLUMNS[h])} for h in HISTORIES}
        for row, r in zip(rows, records, strict=True):
            for h, entries in _entries(r).items():
                out = new[h]
                self.start[h][row] = self.tables[h].size + len(out["deal"])
                self.count[h][row] = len(entries)
                for at, value in entries:
                    out["deal"].append(row)
                    out["at"].append(micros(ts(at)))
                    if h == "amount":
                        millionths, exponent = scaled(value)
                        out["amount"].append(millionths)
                        out["amount_exp"].append(exponent)
                    elif h == "close":
                        out["day"].append(close_day(value, tz))
                    else:
                        out[h].append(code(value))
        for h, out in new.items():
            self._append(h, out)
            if self.tables[h].size > 2 * int(self.count[h].sum()) + 4096:
                self._compact(h)

    def _append(self, h: str, out: dict[str, list[Any]]) -> None:
        table = self.tables[h]
        start = table.size
        table.extend(len(out["deal"]))
        span = slice(start, table.size)
        amounts = out.get("amount")
        if amounts and max(abs(a) for a in amounts) > np.iinfo(np.int64).max \
                and table.cols["amount"].dtype != object:
            table.cols["amount"] = table.cols["amount"].astype(object)  # beyond int64
        for name, values in out.items():
            table.cols[name][span] = values

    def live(self, h: str) -> NDArray[np.int64]:
        """The live rows of history `h`, in row order (each deal's in its list order)."""
        table = self.tables[h]
        deal = table["deal"]
        index = np.arange(table.size, dtype=np.int64)
        start = self.start[h][deal]
        return np.flatnonzero((index >= start) & (index < start + self.count[h][deal]))

    def _compact(self, h: str) -> None:
        table, keep = self.tables[h], self.live(h)
        for name in table.cols:
            table.cols[name] = table[name][keep].copy()
        table.size = len(keep)
        deal = table["deal"]
        self.start[h][:] = 0
        first = np.ones(len(deal), dtype=bool)
        first[1:] = deal[1:] != deal[:-1]  # a deal's live rows are contiguous
        self.start[h][deal[first]] = np.flatnonzero(first)

    def at(self, h: str, moments: NDArray[np.int64]) -> NDArray[np.int64]:
        """Per deal row, the row of its last entry of `h` (in list order) at or before its
        moment (`moments[deal]`); -1 where none."""
        rows = self.live(h)
        table = self.tables[h]
        deal = table["deal"][rows]
        rows = rows[table["at"][rows] <= moments[deal]]
        last = np.full(len(moments), -1, dtype=np.int64)
        np.maximum.at(last, table["deal"][rows], rows)
        return last
