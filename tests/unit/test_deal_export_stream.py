"""The deal export streamed from copies of the columns: byte for byte what the API sent
when it rendered every row at once (csv.DictWriter, JSONResponse), whatever the ids,
amounts, moments and dimension values hold; the deals of the moment it was taken while the
store changes under it; and let go, copies and all, by a client that hangs up."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from fastapi.responses import JSONResponse, StreamingResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message

from projections import columnar_export, export
from projections.columnar import LOAD_ORDER, NOW, Columns
from projections.columnar_export import SelectedDeals, csv_chunks, json_chunks, selected_deals
from projections.columnar_views import as_decimal
from projections.export import DEAL_COLUMNS
from projections.keyindex import MAX_WIDTH, KeyIndex, TakenKeys
from projections.snapshot import Filters, Snapshot
from services.api import exports
from services.api.export_slots import ExportSlots
from tests.depth import examples
from tests.history import TZ, columns_from, fold, simulated

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rendered(rows: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """The CSV and the JSON the API sent for these rows before the export was streamed."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DEAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(), bytes(JSONResponse({"count": len(rows),
                                                        "deals": rows}).body)


def streamed(deals: SelectedDeals, size: int | None = None) -> tuple[bytes, bytes]:
    return b"".join(csv_chunks(deals, size)), b"".join(json_chunks(deals, size))


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _instant(micros: int, offset: int) -> str:
    zone = timezone(timedelta(seconds=offset))
    return (EPOCH + timedelta(microseconds=micros)).astimezone(zone).isoformat()


TEXTS = st.text(max_size=6) | st.sampled_from([",", '"', "a\nb", "\r", " x ", "é€", "a,\"b\""])
KEYS = st.text(min_size=1, max_size=8) | st.sampled_from(
    ["D-1", 'D,"2"', "D\n3", "a\0", "x" * (MAX_WIDTH + 3), "日本-4"])
MOMENTS = st.integers(_micros(datetime(1900, 1, 2, tzinfo=UTC)),
                      _micros(datetime(2999, 12, 30, tzinfo=UTC))) | st.sampled_from(
    [0, -1, 1_483_228_800_000_000, 1_483_228_800_000_001])
OFFSETS = st.sampled_from([0, 28_800, -18_000, 19_800, 20_700]) | st.integers(-86_399, 86_399)
AMOUNTS = st.integers(-10**9, 10**9) | st.integers(-10**20, 10**20)  # beyond int64 too


@st.composite
def exports_of_deals(draw: Callable[..., Any]) -> tuple[SelectedDeals, list[dict[str, Any]]]:
    """Deals as the columns copy them, and the rows `export.deal_rows` gives for them."""
    values: list[str | None] = [None, *draw(st.lists(TEXTS, unique=True, max_size=5))]
    ids: list[str] = draw(st.lists(KEYS, unique=True, max_size=12))
    n = len(ids)

    def column(of: st.SearchStrategy[Any]) -> list[Any]:
        return cast(list[Any], draw(st.lists(of, min_size=n, max_size=n)))

    # Few hashes: keys sharing one are kept apart from the bytes column, as are NUL-ended
    # and long ones.
    index = KeyIndex(hasher=lambda key: len(key) % 3)
    taken = index.taken(np.array(index.rows(ids), dtype=np.int64))
    coded = {name: column(st.integers(0, len(values) - 1))
             for name in ("status", "stage", *DEAL_COLUMNS[6:])}
    amounts, exponents = column(AMOUNTS), column(st.integers(-6, 3))
    created, created_offsets = column(MOMENTS), column(OFFSETS)
    closed, closed_offsets = column(st.none() | MOMENTS), column(OFFSETS)
    wide = any(abs(a) >= 2**63 for a in amounts)
    deals = SelectedDeals(
        taken, np.array(values, dtype=object),
        {name: np.array(codes, dtype=np.int32) for name, codes in coded.items()},
        np.array(amounts, dtype=object if wide else np.int64), np.array(exponents, np.int8),
        np.array(created, np.int64), np.array(created_offsets, np.int32),
        np.array([NOW if c is None else c for c in closed], np.int64),
        np.array(closed_offsets, np.int32))
    rows = [{"deal_id": ids[i], "status": values[coded["status"][i]],
             "stage": values[coded["stage"][i]],
             "amount": str(as_decimal(amounts[i], exponents[i])),
             "created_at": _instant(created[i], created_offsets[i]),
             "closed_at": None if closed[i] is None else _instant(closed[i], closed_offsets[i]),
             **{name: values[coded[name][i]] for name in DEAL_COLUMNS[6:]}}
            for i in range(n)]
    return deals, rows


@settings(max_examples=examples(300), deadline=None)
@given(exports_of_deals(), st.integers(1, 4))
def test_streamed_chunks_are_the_bytes_dictwriter_and_jsonresponse_wrote(
        case: tuple[SelectedDeals, list[dict[str, Any]]], size: int) -> None:
    deals, rows = case
    assert streamed(deals, size) == rendered(rows)


def test_a_stream_keeps_the_deals_of_the_moment_it_was_taken_while_the_columns_change() -> None:
    early = fold(simulated(days=120))
    columns = columns_from(early)
    deals = selected_deals(columns, Filters())
    chunks, pieces = csv_chunks(deals, 40), json_chunks(deals, 40)
    first, first_piece = next(chunks), next(pieces)
    later = fold(simulated())  # the rest of the year: deals closed, moved, added
    for kind in LOAD_ORDER:
        columns.put_many(kind, list(later.get(kind, {}).values()))
    then = rendered(export.deal_rows(Snapshot(early, TZ), Filters()))
    assert (first + b"".join(chunks), first_piece + b"".join(pieces)) == then
    assert streamed(selected_deals(columns, Filters())) != then  # the columns did change


class _CountedKeys(TakenKeys):
    """Taken keys that count the chunks read from them: one a chunk formatted."""

    read = 0

    def texts(self, start: int, stop: int) -> list[str]:
        _CountedKeys.read += 1
        return super().texts(start, stop)


class _Stores:
    """The column stores as the export route uses them, over one `Columns`; keeps a weak
    reference to each export it hands out."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.handed: list[weakref.ref[SelectedDeals]] = []

    async def copied(self, tenant: str, take: Callable[[Columns], SelectedDeals]
                     ) -> SelectedDeals:
        deals = take(self.columns)
        deals = replace(deals, ids=_CountedKeys(deals.ids.stored, deals.ids.apart))
        self.handed.append(weakref.ref(deals))
        return deals


async def _exported(stores: _Stores, format: str,  # noqa: A002
                    slots: ExportSlots | None = None) -> StreamingResponse:
    services = cast(Any, SimpleNamespace(columns=stores, exports=slots or ExportSlots(1)))
    return await exports.export_deals(services, "default", Filters(), format)  # type: ignore[arg-type]


async def _sent(response: StreamingResponse, hang_up_after: int | None = None
                ) -> list[Message]:
    """What the response sends, as uvicorn serves it (ASGI 2.3: Starlette listens for the
    client going away); the client hangs up after `hang_up_after` body chunks."""
    sent: list[Message] = []
    gone = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        if sum(m["type"] == "http.response.body" for m in sent) == hang_up_after:
            gone.set()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    await response({"type": "http", "asgi": {"spec_version": "2.3"}}, receive, send)
    return sent


@cache
def _year() -> tuple[Snapshot, Columns]:
    records = fold(simulated())
    return Snapshot(records, TZ), columns_from(records)


async def test_the_route_streams_what_the_api_sent_with_the_same_headers() -> None:
    snapshot, columns = _year()
    csv_bytes, json_bytes = rendered(export.deal_rows(snapshot, Filters()))
    for format, body, headers in (
            ("csv", csv_bytes, {b"content-type": b"text/csv; charset=utf-8",
                                b"content-disposition": b'attachment; filename="deals.csv"'}),
            ("json", json_bytes, {b"content-type": b"application/json"})):
        sent = await _sent(await _exported(_Stores(columns), format))
        assert dict(sent[0]["headers"]) == headers
        assert b"".join(m.get("body", b"") for m in sent[1:]) == body


async def test_a_client_hanging_up_mid_stream_stops_it_and_lets_go_of_the_copies(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(columnar_export, "CHUNK_ROWS", 40)  # a year's deals: a dozen chunks
    snapshot, columns = _year()
    stores = _Stores(columns)
    _CountedKeys.read = 0
    slots = ExportSlots(1)
    response = await _exported(stores, "csv", slots)
    sent = await _sent(response, hang_up_after=1)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(snapshot.deals) > 8 * 40  # a dozen chunks, of which
    assert 1 <= len(bodies) <= 2 and _CountedKeys.read <= 2  # one or two formatted and sent
    assert all(m["more_body"] for m in bodies)  # and the answer never finished
    del response
    gc.collect()
    assert stores.handed[0]() is None  # the copies went with the stream
    assert slots.held == 0  # and so did its export slot
