"""Rows of an opportunity export → contract events, in event-time order. Pure: no I/O.

One row is one deal. Its events: `deal.created` at the creation date, a
`deal.stage_changed` for each stage the file dates, and `deal.won` / `deal.lost`
at the close date. Each rep and customer is introduced (`rep.joined`,
`customer.created`) once, at the time of their first event, by the first row
that names them. Event ids are uuid5 of (file name, row, event kind), so the
same file imported again gives the same ids and the API answers `duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from events.errors import InvalidEvent
from events.parsing import parse_event
from services.importer.cells import moment_of, text
from services.importer.mapping import Mapping, MappingError
from services.importer.reading import Table

_NAMESPACE = uuid5(NAMESPACE_URL, "https://salespulse.dev/import")
OUTCOMES = ("won", "lost")
# Same instant: introductions first, then the deal's own story in its natural order.
_PRIORITY = {"rep.joined": 0, "customer.created": 1, "deal.created": 2,
             "deal.stage_changed": 3, "deal.won": 4, "deal.lost": 4}
# Where a contract data field comes from, to name the file's column in a rejection.
_FIELD_OF_DATA = {"deal_id": "deal_id", "owner_id": "owner_id", "customer_id": "customer_id",
                  "amount": "amount", "product": "product", "source": "source",
                  "stage": "stage", "reason": "lost_reason", "competitor": "competitor",
                  "expected_close": "expected_close", "rep_id": "owner_id", "name": "rep_name",
                  "team_id": "team_id", "manager_id": "manager_id", "region": "region",
                  "segment": "segment", "industry": "industry"}
_FIELD_BY_TYPE = {("deal.won", "amount"): "won_amount",
                  ("customer.created", "name"): "customer_name",
                  ("customer.created", "region"): "customer_region"}


def event_id(source: str, row: int, kind: str) -> str:
    """Deterministic: the same file, row and kind of event always give the same id."""
    return str(uuid5(_NAMESPACE, f"{source}\x1f{row}\x1f{kind}"))


@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    message: str


@dataclass(frozen=True)
class RowEvent:
    """A contract event and the row it came from (`introduces`: "rep:R7" for introductions)."""

    row: int
    event: dict[str, Any]
    refs: tuple[str, ...] = ()
    introduces: str | None = None


@dataclass
class Conversion:
    rows: int = 0
    events: list[RowEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    skipped: list[Rejection] = field(default_factory=list)  # undated rows the mapping skips


@dataclass
class _Deal:
    row: int
    deal_id: str
    owner: str
    created_at: datetime
    stage: str | None
    closed_at: datetime | None
    cells: dict[str, Any]
    stage_dates: list[tuple[str, datetime]]


class _RowError(Exception):
    def __init__(self, rejections: list[Rejection]) -> None:
        super().__init__(rejections[0].message)
        self.rejections = rejections


def convert(table: Table, mapping: Mapping, source: str) -> Conversion:
    """Every row of `table` as events sorted by event time, or a rejection naming the column."""
    missing = [c for c in [*mapping.columns.values(), *mapping.stage_dates.values()]
               if c not in table.columns]
    if missing:
        raise MappingError(f"column {missing[0]!r} is not in the file; it has: "
                           f"{', '.join(table.columns)}")
    result = Conversion(rows=len(table.rows))
    deals: list[_Deal] = []
    seen: dict[str, int] = {}
    for number, cells in table.rows:
        try:
            deal = _read_row(number, cells, mapping)
        except _RowError as error:
            result.rejected.extend(error.rejections)
            continue
        if deal is None:
            result.skipped.append(Rejection(number, mapping.column("created_at"),
                                            "no creation date: skipped as the mapping asks"))
            continue
        if deal.deal_id in seen:
            result.rejected.append(Rejection(number, mapping.column("deal_id"),
                                             f"{deal.deal_id!r} is already on row "
                                             f"{seen[deal.deal_id]}"))
            continue
        seen[deal.deal_id] = number
        deals.append(deal)
    events: list[tuple[datetime, int, int, RowEvent]] = []
    kept: list[_Deal] = []
    for deal in deals:
        try:
            story = _checked(_deal_events(deal, mapping, source), mapping)
        except _RowError as error:
            result.rejected.extend(error.rejections)
            continue
        kept.append(deal)
        events.extend(story)
    events.extend(_introductions(kept, events, mapping, source, result))
    result.rejected.sort(key=lambda r: r.row)
    events.sort(key=lambda item: (item[0], item[1], item[2]))  # stable by generation order
    rejected_rows = {r.row for r in result.rejected}
    result.events = [e[3] for e in events if e[3].row not in rejected_rows or e[3].introduces]
    return result


# --- one row ------------------------------------------------------------------

def _cell(cells: dict[str, Any], mapping: Mapping, name: str) -> str:
    column = mapping.columns.get(name)
    raw = text(cells.get(column)) if column else ""
    if raw and name in mapping.values:
        table = mapping.values[name]
        if raw not in table:
            raise _RowError([Rejection(0, mapping.column(name),
                                       f"{raw!r} is not one of {', '.join(table)}")])
        return table[raw]
    return raw or mapping.defaults.get(name, "")


def _when(value: Any, mapping: Mapping) -> datetime | None:
    """A cell as an aware moment: dates at midnight and naive times in the mapping's zone."""
    return moment_of(value, mapping.timezone,
                     lambda raw: _parse_date(raw, mapping.date_formats))


def _parse_date(text: str, formats: tuple[str, ...]) -> datetime:
    if not formats:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date") from None
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} matches none of the date formats {', '.join(formats)}")


def _read_row(number: int, cells: dict[str, Any], mapping: Mapping) -> _Deal | None:
    errors: list[Rejection] = []

    def get(name: str) -> str:
        try:
            return _cell(cells, mapping, name)
        except _RowError as error:
            errors.extend(Rejection(number, r.column, r.message) for r in error.rejections)
            return ""

    def moment(name: str, column: str | None = None) -> datetime | None:
        column = column or mapping.columns.get(name)
        if column is None:
            return None
        try:
            return _when(cells.get(column), mapping)
        except ValueError as exc:
            errors.append(Rejection(number, column, str(exc)))
            return None

    deal_id, owner, stage = get("deal_id"), get("owner_id"), get("stage") or None
    created_at, closed_at = moment("created_at"), moment("closed_at")
    dated = [(s, moment(s, c)) for s, c in mapping.stage_dates.items()]
    for name, value in (("deal_id", deal_id), ("owner_id", owner)):
        if not value:
            errors.append(Rejection(number, mapping.column(name), "empty: every row needs it"))
    if created_at is None and not any(e.column == mapping.column("created_at") for e in errors):
        if mapping.undated == "skip" and not errors:
            return None
        errors.append(Rejection(number, mapping.column("created_at"),
                                "empty: a deal needs the date it was created"))
    if stage in OUTCOMES and closed_at is None and mapping.columns.get("closed_at") and \
            not any(e.column == mapping.column("closed_at") for e in errors):
        errors.append(Rejection(number, mapping.column("closed_at"),
                                f"empty: a {stage} deal needs its close date"))
    if created_at and closed_at and stage in OUTCOMES and closed_at < created_at:
        errors.append(Rejection(number, mapping.column("closed_at"),
                                f"before {mapping.column('created_at')} "
                                f"({created_at.date().isoformat()})"))
    stage_dates = sorted(((s, at) for s, at in dated if at is not None), key=lambda x: x[1])
    for s, at in stage_dates:
        if created_at and at < created_at or closed_at and stage in OUTCOMES and at > closed_at:
            errors.append(Rejection(number, mapping.stage_dates[s],
                                    "outside the deal's life (creation to close)"))
    if errors:
        raise _RowError(errors)
    assert created_at is not None
    if stage in OUTCOMES and closed_at is None:
        stage = None  # the mapping has no close date column: an outcome without a time is moot
    return _Deal(number, deal_id, owner, created_at, stage, closed_at, cells, stage_dates)


# --- events -------------------------------------------------------------------

def _event(source: str, row: int, kind: str, type_: str, at: datetime,
           data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id(source, row, kind), "type": type_, "occurred_at": at.isoformat(),
            "data": {k: v for k, v in data.items() if v not in (None, "")}}


def _amount(deal: _Deal, mapping: Mapping, name: str) -> str | None:
    raw = _cell(deal.cells, mapping, name)
    if not raw:
        return None
    try:
        # Fixed point: the contract takes plain decimal strings, not "1E+3"
        return format(Decimal(raw.replace(",", "")), "f")
    except InvalidOperation:
        raise _RowError([Rejection(deal.row, mapping.column(name),
                                   f"{raw!r} is not an amount")]) from None


def _deal_events(deal: _Deal, mapping: Mapping,
                 source: str) -> list[tuple[datetime, int, int, RowEvent]]:
    def cell(name: str) -> str:
        try:
            return _cell(deal.cells, mapping, name)
        except _RowError as error:
            raise _RowError([Rejection(deal.row, r.column, r.message)
                             for r in error.rejections]) from None

    customer = cell("customer_id") or None
    refs = (f"rep:{deal.owner}",) + ((f"customer:{customer}",) if customer else ())
    closed = deal.stage in OUTCOMES
    open_stage = None if closed else deal.stage
    created_stage = mapping.created_stage if closed or deal.stage_dates else open_stage
    story: list[tuple[str, str, datetime, dict[str, Any]]] = [(
        "deal.created", "deal.created", deal.created_at,
        {"deal_id": deal.deal_id, "owner_id": deal.owner, "customer_id": customer,
         "amount": _amount(deal, mapping, "amount"), "product": cell("product"),
         "source": cell("source"), "stage": created_stage,
         "expected_close": cell("expected_close")})]
    reached, last_at = created_stage, deal.created_at
    for stage, at in deal.stage_dates:
        if stage != reached:
            story.append((f"deal.stage_changed:{stage}", "deal.stage_changed", at,
                          {"deal_id": deal.deal_id, "stage": stage}))
            reached, last_at = stage, at
    if open_stage and deal.stage_dates and open_stage != reached:
        story.append((f"deal.stage_changed:{open_stage}", "deal.stage_changed", last_at,
                      {"deal_id": deal.deal_id, "stage": open_stage}))
    if deal.stage == "won" and deal.closed_at:
        story.append(("deal.won", "deal.won", deal.closed_at,
                      {"deal_id": deal.deal_id, "amount": _amount(deal, mapping, "won_amount")}))
    elif deal.stage == "lost" and deal.closed_at:
        story.append(("deal.lost", "deal.lost", deal.closed_at,
                      {"deal_id": deal.deal_id, "reason": cell("lost_reason"),
                       "competitor": cell("competitor")}))
    return [(at, _PRIORITY[type_], deal.row, RowEvent(deal.row, _event(
        source, deal.row, kind, type_, at, data), refs)) for kind, type_, at, data in story]


def _checked(story: list[tuple[datetime, int, int, RowEvent]],
             mapping: Mapping) -> list[tuple[datetime, int, int, RowEvent]]:
    """Refuse locally what the API would refuse for its shape, naming the file's column."""
    for _at, _p, row, item in story:
        try:
            parse_event(item.event, tz=mapping.timezone)
        except InvalidEvent as invalid:
            raise _RowError([Rejection(row, column_of(e.field, mapping, item.event["type"]),
                                       e.message)
                             for e in invalid.errors]) from None
    return story


def column_of(field_path: str, mapping: Mapping, event_type: str = "") -> str:
    """The file's column behind a contract field such as `data.amount` of a `deal.won`."""
    name = field_path.removeprefix("data.").split(".")[0]
    name = _FIELD_BY_TYPE.get((event_type, name), _FIELD_OF_DATA.get(name, name))
    return mapping.column(name)


def _introductions(deals: list[_Deal], events: list[tuple[datetime, int, int, RowEvent]],
                   mapping: Mapping, source: str,
                   result: Conversion) -> list[tuple[datetime, int, int, RowEvent]]:
    """`rep.joined` and `customer.created` at each one's first event, by the first row naming
    them; an introduction the contract refuses rejects every row that needs it."""
    first: dict[str, tuple[datetime, int]] = {}
    for at, _p, row, item in events:
        for ref in item.refs:
            if ref not in first or (at, row) < first[ref]:
                first[ref] = (at, row)
    cells = {deal.row: deal.cells for deal in deals}
    out: list[tuple[datetime, int, int, RowEvent]] = []
    failed: dict[str, Rejection] = {}
    for ref, (at, row) in first.items():
        kind, key = ref.split(":", 1)
        row_cells = cells[row]

        def cell(name: str, row_cells: dict[str, Any] = row_cells) -> str:
            try:
                return _cell(row_cells, mapping, name)
            except _RowError:
                return ""

        if kind == "rep":
            type_, data = "rep.joined", {
                "rep_id": key, "name": cell("rep_name") or key, "team_id": cell("team_id"),
                "manager_id": cell("manager_id"), "region": cell("region")}
        else:
            type_, data = "customer.created", {
                "customer_id": key, "name": cell("customer_name") or key,
                "segment": cell("segment"), "industry": cell("industry"),
                "region": cell("customer_region")}
        event = _event(source, row, type_, type_, at, data)
        try:
            parse_event(event, tz=mapping.timezone)
        except InvalidEvent as invalid:
            error = invalid.errors[0]
            hint = (" (map a column or set defaults.team_id)"
                    if error.field == "data.team_id" else "")
            failed[ref] = Rejection(row, column_of(error.field, mapping, type_),
                                    f"cannot introduce {kind} {key!r}: {error.message}{hint}")
            continue
        out.append((at, _PRIORITY[type_], row, RowEvent(row, event, introduces=ref)))
    for _at, _p, row, item in events:
        for ref in item.refs:
            if ref in failed and item.event["type"] == "deal.created":
                reason = failed[ref]
                result.rejected.append(Rejection(row, reason.column, reason.message))
    return out
