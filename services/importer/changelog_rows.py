"""Rows of a CRM change log → the changes they make (`Change`), and a joined deals export →
what it says of each deal. Pure: no I/O. Cells read leniently (thousands separators,
currency symbols, several date formats, epoch milliseconds); a cell that cannot be read
rejects its row, naming the column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.importer.cells import moment_of, text
from services.importer.changelog_mapping import STATUSES, ChangeMapping
from services.importer.mapping import MappingError
from services.importer.reading import Table

_TRUE = ("true", "1", "yes")
_AMOUNT = re.compile(r"^\s*(?:[A-Za-z]{3}|[$€£¥₹])?\s*(?P<number>[-+]?[\d.,' \u00a0]*\d)\s*"
                     r"(?:[A-Za-z]{3}|[$€£¥₹])?\s*$")
_CONTRACT_ROLE = {"amount": "amount", "stage": "stage", "expected_close": "close_date",
                  "owner_id": "owner", "customer_id": "customer"}


@dataclass(frozen=True)
class Change:
    """One field of a deal set at a moment, read from one row (`old`: the value before)."""

    row: int
    deal_id: str
    at: datetime
    sequence: str
    field: str
    value: str
    old: str | None
    column: str
    actor: str | None = None
    row_key: tuple[tuple[int, str, str], ...] = ()  # the row's content, to order ties by


@dataclass(frozen=True)
class DealFacts:
    """What a joined deals export (Salesforce `Opportunity`) says of one deal."""

    owner: str | None = None
    customer: str | None = None
    lost_reason: str | None = None
    closed_stage: tuple[str, str] | None = None  # (stage value, "won" | "lost")


class RowRejected(Exception):
    """The row cannot be imported: the column at fault, and why."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


class RowSkipped(RowRejected):
    """Nothing in the row to import (an ignored field, an empty value, a deleted row)."""


# --- cells ----------------------------------------------------------------------

def parse_moment(value: Any, mapping: ChangeMapping) -> datetime:
    """ISO 8601, epoch milliseconds (HubSpot) or seconds, or one of the mapping's formats;
    a time without offset is in the mapping's zone, a date is midnight there."""
    moment = moment_of(value, mapping.timezone,
                       lambda raw: _parse_text_moment(raw, mapping.date_formats))
    if moment is None:
        raise ValueError("empty: every change needs its time")
    return moment


def _parse_text_moment(raw: str, formats: tuple[str, ...]) -> datetime:
    if raw.isdigit() and len(raw) in (10, 13):
        return datetime.fromtimestamp(int(raw) / (1000 if len(raw) == 13 else 1), UTC)
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        pass
    for fmt in formats:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    tried = f" or {', '.join(formats)}" if formats else " (add its format to dates.formats)"
    raise ValueError(f"{raw!r} is not a date: not ISO 8601, epoch milliseconds{tried}")


def parse_amount(raw: str, decimal: str = ".") -> str:
    """`1,234.50`, `$1 234`, `EUR 1.234,50` (with `decimal = ","`) → a plain decimal."""
    match = _AMOUNT.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not an amount")
    number = match["number"].replace("'", "").replace(" ", "").replace("\u00a0", "")
    thousands = "," if decimal == "." else "."
    number = number.replace(thousands, "").replace(decimal, ".")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not an amount") from None
    return str(amount)


def _day(value: Any, mapping: ChangeMapping) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    raw = text(value)
    if len(raw) == 10 and raw[4] == "-":  # a plain date stays that day, in any zone
        return date.fromisoformat(raw).isoformat()
    return parse_moment(value, mapping).date().isoformat()


# --- rows → changes ---------------------------------------------------------------

def owner_of(raw: str, mapping: ChangeMapping, column: str) -> str:
    if not mapping.owners:
        return raw
    if raw not in mapping.owners:
        raise RowRejected(column, f"owner {raw!r} is not in [values.owner]")
    return mapping.owners[raw]


def _stage(raw: str, mapping: ChangeMapping, facts: DealFacts,
           column: str) -> tuple[str, str]:
    """A stage value as (field, value): an open stage, or the status a won/lost stage sets."""
    if raw in mapping.stages:
        return "stage", mapping.stages[raw]
    if raw in mapping.won:
        return "status", "won"
    if raw in mapping.lost:
        return "status", "lost"
    if facts.closed_stage and facts.closed_stage[0] == raw:
        return "status", facts.closed_stage[1]
    known = [*mapping.stages, *mapping.won, *mapping.lost]
    raise RowRejected(column, f"{raw!r} is not a mapped stage ({', '.join(known)}): "
                            "add it to [values.stage] or [outcomes]")


def _value(name: str, raw: Any, mapping: ChangeMapping, facts: DealFacts,
           column: str) -> tuple[str, str]:
    """A cell as the (field, value) it sets; `RowRejected` naming the column if it cannot."""
    cell = text(raw)
    if name == "lost_reason":
        return name, cell
    if not cell:
        raise RowSkipped(column, f"empty {name}: a value cannot be cleared")
    try:
        if name == "stage":
            return _stage(cell, mapping, facts, column)
        if name == "amount":
            return name, parse_amount(cell, mapping.decimal)
        if name == "close_date":
            return name, _day(raw, mapping)
    except ValueError as exc:
        raise RowRejected(column, str(exc)) from None
    if name == "owner":
        return name, owner_of(cell, mapping, column)
    if name == "status":
        status = cell.lower()
        if status not in STATUSES:
            raise RowRejected(column, f"{cell!r} is not a status ({', '.join(STATUSES)})")
        if status == "deleted":
            raise RowSkipped(column, "a deal's deletion is not imported")
        return name, status
    return name, cell  # customer


def _old(name: str, raw: Any, mapping: ChangeMapping, facts: DealFacts) -> str | None:
    try:
        found, value = _value(name, raw, mapping, facts, "")
    except RowRejected:
        return None
    return value if found == name and value else None


def read_row(number: int, cells: dict[str, Any], mapping: ChangeMapping,
              facts: dict[str, DealFacts]) -> list[Change]:
    column = mapping.column
    deal_id = text(cells.get(column("deal_id")))
    if not deal_id:
        raise RowRejected(column("deal_id"), "empty: every row needs the deal's id")
    if "deleted" in mapping.columns and text(cells.get(column("deleted"))).lower() in _TRUE:
        raise RowSkipped(column("deleted"), "a deleted history row is not imported")
    try:
        at = parse_moment(cells.get(column("changed_at")), mapping)
    except ValueError as exc:
        raise RowRejected(column("changed_at"), str(exc)) from None
    sequence = text(cells.get(column("sequence"))) if "sequence" in mapping.columns else ""
    actor = text(cells.get(column("actor"))) if "actor" in mapping.columns else ""
    deal = facts.get(deal_id, DealFacts())
    if mapping.long:
        key = text(cells.get(column("field")))
        name = mapping.fields.get(key, "ignore")
        if name == "ignore":
            raise RowSkipped(column("field"), f"field {key!r} is not imported")
        found, value = _value(name, cells.get(column("value")), mapping, deal, column("value"))
        old = (_old(name, cells.get(column("old_value")), mapping, deal)
               if "old_value" in mapping.columns else None)
        return [Change(number, deal_id, at, sequence, found, value,
                       old if found == name else None, column("value"), actor or None)]
    changes = []
    for name in ("stage", "amount", "close_date"):
        if name not in mapping.columns:
            continue
        try:
            found, value = _value(name, cells.get(column(name)), mapping, deal, column(name))
        except RowSkipped:
            if name == "stage":
                raise RowRejected(column(name), "empty: a snapshot needs its stage") from None
            continue  # a snapshot leaves an unset amount or close date unset
        changes.append(Change(number, deal_id, at, sequence, found, value, None, column(name),
                              actor or None))
    return changes


def read_deals(deals: Table | None, mapping: ChangeMapping) -> dict[str, DealFacts]:
    if deals is None:
        return {}
    columns = mapping.deal_columns
    if columns.get("deal_id") not in deals.columns:
        raise MappingError(f"the deals export has no column {columns.get('deal_id')!r} "
                           f"(deal_columns.deal_id); it has: {', '.join(deals.columns)}")

    def cell(cells: dict[str, Any], role: str) -> str:
        return text(cells.get(columns[role])) if role in columns else ""

    facts = {}
    for _number, cells in deals.rows:
        closed = cell(cells, "is_closed").lower() in _TRUE
        stage = cell(cells, "stage")
        outcome = "won" if cell(cells, "is_won").lower() in _TRUE else "lost"
        facts[cell(cells, "deal_id")] = DealFacts(
            owner=cell(cells, "owner") or None, customer=cell(cells, "customer") or None,
            lost_reason=cell(cells, "lost_reason") or None,
            closed_stage=(stage, outcome) if closed and stage else None)
    return facts


def change_column_of(field_path: str, mapping: ChangeMapping) -> str:
    """The file's column behind a contract field of a converted change (for refusals)."""
    name = field_path.removeprefix("data.").split(".")[0]
    if name == "deal_id":
        return mapping.column("deal_id")
    if name == "occurred_at":
        return mapping.column("changed_at")
    role = _CONTRACT_ROLE.get(name)
    if role is None:
        return field_path
    if mapping.long:
        return mapping.column("value")
    return mapping.column(role) if role in mapping.columns else field_path
