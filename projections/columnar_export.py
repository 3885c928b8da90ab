"""The deal export over `Columns`, streamed: the selected deals' columns copied at once, then
formatted a chunk of rows at a time, as CSV or as JSON, straight from the arrays.

The bytes are those of `export.py`'s rows over a `Snapshot` written by `csv.DictWriter`
(lineterminator "\\n") or rendered by `JSONResponse` (a test holds them identical). The
copies keep a stream to the columns of one moment however the store changes meanwhile:
at 1M deals they are some 100 MB of numpy, against a dictionary a deal.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import NOW, Columns
from projections.columnar_views import as_decimal
from projections.export import DEAL_COLUMNS
from projections.keyindex import TakenKeys
from projections.snapshot import Filters

CHUNK_ROWS = 2_000  # deals a chunk: some 300 kB of CSV, 600 kB of JSON, ~10 ms to format
_CSV_SPECIAL = (",", '"', "\r", "\n")  # what makes csv quote a field (QUOTE_MINIMAL)
# One deal as JSONResponse writes it, its 13 values already JSON text.
_JSON_ROW = "{" + ",".join(f"{encode_basestring(name)}:%s" for name in DEAL_COLUMNS) + "}"


@dataclass(frozen=True)
class SelectedDeals:
    """The deals the filters select, in export order (by creation, then id): copies of the
    columns their rows need, apart from the store."""

    ids: TakenKeys
    values: NDArray[np.object_]  # the strings table: codes -> text (None at 0)
    coded: dict[str, NDArray[np.int32]]  # status, stage and the dimensions, by column
    amount: NDArray[Any]  # integer millionths (Python ints beyond int64)
    exponent: NDArray[np.int8]
    created: NDArray[np.int64]
    created_offset: NDArray[np.int32]
    closed: NDArray[np.int64]  # NOW while open
    closed_offset: NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.ids)


def selected_deals(columns: Columns, filters: Filters) -> SelectedDeals:
    """Copy what the export of the selected deals reads (under the store's lock)."""
    d = columns.deals
    keys = d.keys
    assert keys is not None
    rows = np.flatnonzero(columns.select("deal", filters.dims, filters.start, filters.end,
                                         day="created_day")).astype(np.int64)
    by_id = rows[keys.sorted_order(rows)]
    rows = by_id[np.argsort(d["created"][by_id], kind="stable")]  # stable: ties stay by id
    facts = columns.deal_facts.of(d.size)
    coded = {"status": d["status"][rows], "stage": facts["stage"][rows],
             **{name: columns.dim("deal", name)[rows] for name in DEAL_COLUMNS[6:]}}
    return SelectedDeals(keys.taken(rows), np.array(columns.strings.values, dtype=object),
                         coded, d["amount"][rows], d["amount_exp"][rows], d["created"][rows],
                         facts["created_offset"][rows], d["closed"][rows],
                         facts["closed_offset"][rows])


def csv_chunks(deals: SelectedDeals, size: int | None = None) -> Iterator[bytes]:
    """The export as CSV: the header row, then `size` (CHUNK_ROWS) deals a chunk."""
    size = size or CHUNK_ROWS
    yield (",".join(_csv(name) for name in DEAL_COLUMNS) + "\n").encode()
    text = np.array([_csv(value) for value in deals.values], dtype=object)
    for start in range(0, len(deals), size):
        fields = _fields(deals, start, start + size, text)
        fields["closed_at"] = ["" if moment is None else moment for moment in fields["closed_at"]]
        # Amounts and instants are digits and `.-+:ET`, which csv never quotes; a chunk
        # with an id that may need quoting has csv write each of its ids.
        if any(special in "".join(fields["deal_id"]) for special in _CSV_SPECIAL):
            fields["deal_id"] = [_csv(key) for key in fields["deal_id"]]
        rows = zip(*(fields[name] for name in DEAL_COLUMNS), strict=True)
        yield "".join([",".join(row) + "\n" for row in rows]).encode()


def json_chunks(deals: SelectedDeals, size: int | None = None) -> Iterator[bytes]:
    """The export as JSON, `{"count": N, "deals": [...]}` as JSONResponse writes it (no
    spaces, UTF-8 unescaped), `size` (CHUNK_ROWS) deals a chunk."""
    size = size or CHUNK_ROWS
    if not len(deals):
        yield b'{"count":0,"deals":[]}'
        return
    text = np.array([_json(value) for value in deals.values], dtype=object)
    before = f'{{"count":{len(deals)},"deals":['
    for start in range(0, len(deals), size):
        fields = _fields(deals, start, start + size, text)
        fields["deal_id"] = [encode_basestring(key) for key in fields["deal_id"]]
        # Decimals and ISO instants hold nothing JSON escapes.
        fields["amount"] = [f'"{amount}"' for amount in fields["amount"]]
        fields["created_at"] = [f'"{moment}"' for moment in fields["created_at"]]
        fields["closed_at"] = ["null" if moment is None else f'"{moment}"'
                               for moment in fields["closed_at"]]
        rows = zip(*(fields[name] for name in DEAL_COLUMNS), strict=True)
        yield (before + ",".join(_JSON_ROW % row for row in rows)).encode()
        before = ","
    yield b"]}"


def _fields(deals: SelectedDeals, start: int, stop: int,
            table: NDArray[np.object_]) -> dict[str, list[Any]]:
    """The values of deals `start`..`stop` by column: text, None where there is none; the
    coded columns as `table` writes each code."""
    part = slice(start, stop)
    closed = deals.closed[part]
    closed_at: list[str | None] = [None] * len(closed)
    shut = np.flatnonzero(closed != NOW)
    for at, moment in zip(shut.tolist(),
                          _instants(closed[shut], deals.closed_offset[part][shut]),
                          strict=True):
        closed_at[at] = moment
    return {"deal_id": deals.ids.texts(start, stop),
            "amount": _amounts(deals.amount[part], deals.exponent[part]),
            "created_at": _instants(deals.created[part], deals.created_offset[part]),
            "closed_at": closed_at,
            **{name: table[codes[part]].tolist() for name, codes in deals.coded.items()}}


def _csv(value: str | None) -> str:
    """A field as `csv.writer` (QUOTE_MINIMAL) writes it among others."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([value, None])
    return out.getvalue()[:-len(",\n")]


def _json(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _amounts(millionths: NDArray[Any], exponents: NDArray[np.int8]) -> list[str]:
    """Each amount as `str(as_decimal(...))` writes it."""
    return [_amount(m, e) for m, e in zip(millionths.tolist(), exponents.tolist(), strict=True)]


def _amount(millionths: int, exponent: int) -> str:
    # Plain digits where `Decimal` would write them so and nothing rounds; else Decimal.
    if -6 <= exponent <= 0:
        whole, part = divmod(abs(millionths), 1_000_000)
        step = 10 ** (6 + exponent)
        if part % step == 0:
            sign = "-" if millionths < 0 else ""
            return f"{sign}{whole}.{part // step:0{-exponent}d}" if exponent else f"{sign}{whole}"
    return str(as_decimal(millionths, exponent))


def _instants(micros: NDArray[np.int64], offsets: NDArray[np.int32]) -> list[str]:
    """Each moment (microseconds since the epoch) as `datetime.isoformat` writes it at the
    offset it was written with."""
    local = micros + offsets.astype(np.int64) * 1_000_000
    seconds = np.datetime_as_string(local.astype("datetime64[us]"), unit="s").tolist()
    fractions = (local % 1_000_000).tolist()
    zones = {offset: _zone(offset) for offset in np.unique(offsets).tolist()}
    return [f"{s}.{f:06d}{zones[o]}" if f else s + zones[o]
            for s, f, o in zip(seconds, fractions, offsets.tolist(), strict=True)]


def _zone(offset: int) -> str:
    """An offset in seconds as `isoformat` ends a moment with it (+08:00, +00:00)."""
    moment = datetime(2000, 1, 1, tzinfo=timezone(timedelta(seconds=offset)))
    return moment.isoformat()[len("2000-01-01T00:00:00"):]
