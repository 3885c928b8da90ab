"""Rows of a CRM change log → contract events, in event-time order. Pure: no I/O.

A change log has a row per change of a deal (Salesforce: a snapshot of the deal after
it; Pipedrive and HubSpot: one field's new value). Rows may come in any order: each
deal's changes are sorted by change time, ties broken by the row's own sequence column
(Salesforce `Id`, Pipedrive `id`) and then by the row's content, never by its place in
the file; so any order of the same rows gives the same events, with the same ids.

A deal is created at its first change, with the values of that instant (and, where the
log has old values, the values its later changes replaced). Each later change that
alters something becomes `deal.stage_changed`, `deal.amount_changed`,
`deal.close_date_changed`, `deal.owner_changed`, `deal.won` (for the amount standing
then) or `deal.lost` (for the last lost reason logged). A closed deal does not change:
a row that would change it after its close (a reopening included) is rejected.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from events.errors import InvalidEvent
from events.parsing import parse_event
from services.importer.changelog_mapping import CHANGE_FIELDS, ChangeMapping
from services.importer.changelog_rows import (
    Change,
    DealFacts,
    RowRejected,
    RowSkipped,
    owner_of,
    read_deals,
    read_row,
    text,
)
from services.importer.convert import Conversion, Rejection, RowEvent
from services.importer.mapping import MappingError
from services.importer.reading import Table

_NAMESPACE = uuid5(NAMESPACE_URL, "https://salespulse.dev/import/changes")
_RANK = {name: rank for rank, name in enumerate(CHANGE_FIELDS)}
_PRIORITY = {"rep.joined": 0, "customer.created": 1, "deal.created": 2}


def event_id(crm: str, deal_id: str, kind: str) -> str:
    """Deterministic: the same change of the same deal always gets the same id, whatever the
    file's name or row order, so importing a log (or a longer export of it) again answers
    `duplicate`."""
    return str(uuid5(_NAMESPACE, f"{crm}\x1f{deal_id}\x1f{kind}"))


# --- changes → events -------------------------------------------------------------

def _sequence_key(sequence: str) -> tuple[int, int, str]:
    return (0, int(sequence), "") if sequence.isdigit() else (1, 0, sequence)


@dataclass
class _Deal:
    """A deal's state as its log is folded, and the events it gave."""

    deal_id: str
    owner: str
    customer: str | None
    stage: str | None
    amount: str | None
    close_date: str | None
    status: str = "open"
    closed_at: datetime | None = None
    events: list[tuple[datetime, int, int, RowEvent]] = field(default_factory=list)
    ids: Counter[str] = field(default_factory=Counter)
    rows: set[int] = field(default_factory=set)


@dataclass
class _Run:
    mapping: ChangeMapping
    result: Conversion

    def reject(self, row: int, column: str, message: str) -> None:
        self.result.rejected.append(Rejection(row, column, message))

    def event(self, deal: _Deal, row: int, type_: str, at: datetime, data: dict[str, Any],
              refs: tuple[str, ...], kind: str | None = None) -> RowEvent:
        """A contract event of `deal`; `InvalidEvent` if the contract refuses it."""
        if kind is None:
            detail = f"{type_}\x1f{at.isoformat()}\x1f{sorted(data.items())}"
            deal.ids[detail] += 1
            kind = f"{detail}\x1f{deal.ids[detail]}"
        event = {"id": event_id(self.mapping.format, deal.deal_id, kind), "type": type_,
                 "occurred_at": at.isoformat(),
                 "data": {k: v for k, v in data.items() if v not in (None, "")}}
        parse_event(event, tz=self.mapping.timezone)
        return RowEvent(row, event, refs, introduces=f"deal:{deal.deal_id}"
                        if type_ == "deal.created" else None)


def _initial(changes: list[Change], name: str) -> str | None:
    """A field's value at the deal's first instant: set then, or replaced by a later change."""
    first = changes[0].at
    values = [c.value for c in changes if c.at == first and c.field == name]
    if values:
        return values[-1]
    later = next((c for c in changes if c.field == name), None)
    return later.old if later else None


def _createdowner_of(changes: list[Change], facts: DealFacts, mapping: ChangeMapping) -> str | None:
    owner = _initial(changes, "owner")
    if owner:
        return owner
    candidates = [facts.owner, changes[0].actor]
    for raw in candidates:
        if raw:
            try:
                return owner_of(raw, mapping, "")
            except RowRejected:
                continue
    return mapping.owner_id


def _fold(changes: list[Change], facts: DealFacts, lost_reason: str | None,
          run: _Run) -> _Deal | None:
    """The deal's events, from its changes in order; None if it cannot be created."""
    mapping = run.mapping
    first = changes[0]
    rows = sorted({c.row for c in changes})
    owner = _createdowner_of(changes, facts, mapping)
    if owner is None:
        for row in rows:
            run.reject(row, first.column, f"deal {first.deal_id!r} has no owner: join the deals "
                       "export (--deals), map an owner field or set defaults.owner_id")
        return None
    deal = _Deal(first.deal_id, owner, _initial(changes, "customer") or facts.customer,
                 _initial(changes, "stage") or mapping.created_stage,
                 _initial(changes, "amount"), _initial(changes, "close_date"), rows=set(rows))
    refs = (f"rep:{deal.owner}",) + ((f"customer:{deal.customer}",) if deal.customer else ())
    try:
        created = run.event(deal, first.row, "deal.created", first.at, {
            "deal_id": deal.deal_id, "owner_id": deal.owner, "customer_id": deal.customer,
            "amount": deal.amount, "stage": deal.stage, "expected_close": deal.close_date,
        }, refs, kind="deal.created")
    except InvalidEvent as invalid:
        error = invalid.errors[0]
        for row in rows:
            run.reject(row, first.column, f"deal {deal.deal_id!r} cannot be created: "
                       f"{error.field} {error.message}")
        return None
    deal.events.append((first.at, _PRIORITY["deal.created"], 0, created))
    by_row: dict[int, list[Change]] = {}
    for change in changes:
        by_row.setdefault(change.row, []).append(change)
    done: set[int] = set()
    for change in changes:
        if change.row not in done:
            done.add(change.row)
            _apply_row(deal, by_row[change.row], lost_reason, run,
                       creating=change.at == first.at)
    return deal


def _apply_row(deal: _Deal, changes: list[Change], lost_reason: str | None, run: _Run, *,
               creating: bool) -> None:
    """One row's changes, all or none: a row refused for one change gives no event. A later
    row that changes nothing recorded (a probability, the same stage again) is skipped."""
    staged: list[tuple[datetime, RowEvent]] = []
    state = {"stage": deal.stage, "amount": deal.amount, "close_date": deal.close_date,
             "owner": deal.owner, "status": deal.status}
    row = changes[0].row
    skipped: Rejection | None = None
    for change in changes:
        if change.field == "lost_reason":
            continue  # becomes the reason of the deal's loss
        if change.field == "customer":
            if change.value != deal.customer:
                skipped = Rejection(row, change.column, "a deal's customer does not change "
                                    "in the contract: the first one stays")
            continue
        current = state[change.field]
        same = (current is not None and Decimal(current) == Decimal(change.value)
                if change.field == "amount" else current == change.value)
        if same:
            continue
        if state["status"] != "open":
            closed_at = deal.closed_at or change.at
            run.reject(row, change.column, f"after the deal was {state['status']} "
                       f"({closed_at.isoformat()}): a closed deal does not change "
                       "(a reopening is not imported)")
            return
        type_, data, refs = _change_event(deal, change, state, lost_reason)
        try:
            staged.append((change.at, run.event(deal, row, type_, change.at,
                                                {"deal_id": deal.deal_id, **data}, refs)))
        except InvalidEvent as invalid:
            error = invalid.errors[0]
            run.reject(row, change.column, f"{error.field}: {error.message}")
            return
        state[change.field] = change.value
    if skipped is None and not staged and not creating and \
            not any(c.field == "lost_reason" for c in changes):
        skipped = Rejection(row, changes[0].column, "changes nothing imported (the same "
                            "stage, amount, close date and owner as before)")
    if skipped is not None and not staged:
        run.result.skipped.append(skipped)
    deal.stage, deal.amount, deal.close_date = state["stage"], state["amount"], state["close_date"]
    deal.owner = state["owner"] or deal.owner
    if state["status"] != deal.status:
        deal.status, deal.closed_at = state["status"] or deal.status, changes[0].at
    for at, item in staged:
        deal.events.append((at, 3, len(deal.events), item))


def _change_event(deal: _Deal, change: Change, state: dict[str, str | None],
                  lost_reason: str | None) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    refs: tuple[str, ...] = (f"deal:{deal.deal_id}",)
    if change.field == "stage":
        return "deal.stage_changed", {"stage": change.value}, refs
    if change.field == "amount":
        return "deal.amount_changed", {"amount": change.value}, refs
    if change.field == "close_date":
        return "deal.close_date_changed", {"expected_close": change.value}, refs
    if change.field == "owner":
        return "deal.owner_changed", {"owner_id": change.value}, (*refs, f"rep:{change.value}")
    if change.value == "won":
        return "deal.won", {"amount": state["amount"]}, refs
    if change.value == "lost":
        return "deal.lost", {"reason": lost_reason}, refs
    raise AssertionError("an open deal set open is no change")


def _introductions(deals: list[_Deal], run: _Run
                   ) -> tuple[list[tuple[datetime, int, str, int, RowEvent]], dict[str, str]]:
    """`rep.joined` / `customer.created` at each one's first event (sorted before it), and
    the refs whose introduction the contract refuses, with the reason."""
    first: dict[str, tuple[datetime, str, int]] = {}
    for deal in deals:
        for at, _p, _i, item in deal.events:
            for ref in item.refs:
                if ref.startswith(("rep:", "customer:")) and \
                        (ref not in first or (at, deal.deal_id) < first[ref][:2]):
                    first[ref] = (at, deal.deal_id, item.row)
    out: list[tuple[datetime, int, str, int, RowEvent]] = []
    failed: dict[str, str] = {}
    for ref, (at, _deal_id, row) in sorted(first.items()):
        kind, key = ref.split(":", 1)
        if kind == "rep":
            type_, data = "rep.joined", {"rep_id": key, "name": key,
                                         "team_id": run.mapping.team_id}
        else:
            type_, data = "customer.created", {"customer_id": key, "name": key}
        event = {"id": event_id(run.mapping.format, ref, type_), "type": type_,
                 "occurred_at": at.isoformat(),
                 "data": {k: v for k, v in data.items() if v not in (None, "")}}
        try:
            parse_event(event, tz=run.mapping.timezone)
        except InvalidEvent as invalid:
            error = invalid.errors[0]
            hint = " (set defaults.team_id)" if error.field == "data.team_id" else ""
            failed[ref] = f"cannot introduce {kind} {key!r}: {error.field} {error.message}{hint}"
            continue
        out.append((at, _PRIORITY[type_], key, 0, RowEvent(row, event, introduces=ref)))
    return out, failed


def convert_changes(table: Table, mapping: ChangeMapping, deals: Table | None = None
                    ) -> Conversion:
    """Every row of a change log as events sorted by event time, or a rejection naming the
    row and column; the same rows in any order give the same events."""
    missing = [mapping.column(r) for r in (*mapping.required, *sorted(mapping.explicit))
               if mapping.column(r) not in table.columns]
    if missing:
        raise MappingError(f"column {missing[0]!r} is not in the file; it has: "
                           f"{', '.join(table.columns)}")
    # A default column the export lacks (an optional one: sequence, actor, old values) is unused.
    mapping = replace(mapping, columns={r: c for r, c in mapping.columns.items()
                                        if c in table.columns})
    facts = read_deals(deals, mapping)
    result = Conversion(rows=len(table.rows))
    run = _Run(mapping, result)
    by_deal = _changes_by_deal(table, mapping, facts, result)
    folded = []
    for deal_id in sorted(by_deal):
        changes = sorted(by_deal[deal_id], key=_order)
        reasons = [c.value for c in changes if c.field == "lost_reason" and c.value]
        known = facts.get(deal_id, DealFacts())
        deal = _fold(changes, known, reasons[-1] if reasons else known.lost_reason, run)
        if deal is not None:
            folded.append(deal)
    ordered, failed = _introductions(folded, run)
    for deal in folded:
        refused = sorted(set(deal.events[0][3].refs) & set(failed))
        if refused:
            for row in sorted(deal.rows):
                run.reject(row, "", failed[refused[0]])
            continue
        for at, priority, index, item in deal.events:
            needs = sorted(set(item.refs) & set(failed))
            if needs:
                run.reject(item.row, "", failed[needs[0]])
                continue
            ordered.append((at, priority, deal.deal_id, index, item))
    ordered.sort(key=lambda entry: entry[:4])
    result.events = [entry[4] for entry in ordered]
    result.rejected.sort(key=lambda r: (r.row, r.column))
    result.skipped.sort(key=lambda r: r.row)
    return result


def _changes_by_deal(table: Table, mapping: ChangeMapping, facts: dict[str, DealFacts],
                     result: Conversion) -> dict[str, list[Change]]:
    """Each row's changes by deal; a repeated row is skipped, naming the row it repeats."""
    seen: dict[tuple[tuple[str, str], ...], int] = {}
    by_deal: dict[str, list[Change]] = {}
    for number, cells in table.rows:
        content = tuple(sorted((k, text(v)) for k, v in cells.items()))
        if content in seen:
            result.skipped.append(Rejection(number, "", f"the same as row {seen[content]}"))
            continue
        seen[content] = number
        try:
            changes = read_row(number, cells, mapping, facts)
        except RowSkipped as skip:
            result.skipped.append(Rejection(number, skip.column, skip.message))
            continue
        except RowRejected as error:
            result.rejected.append(Rejection(number, error.column, error.message))
            continue
        key = tuple((_RANK[c.field], c.value, c.old or "") for c in changes)
        for change in changes:
            by_deal.setdefault(change.deal_id, []).append(replace(change, row_key=key))
    return by_deal


def _order(change: Change) -> tuple[Any, ...]:
    """Change time, then the row's own sequence, then the row's content (so a row's changes
    stay together), then the field: never the row's place in the file."""
    return (change.at, _sequence_key(change.sequence), change.row_key, change.row,
            _RANK[change.field])
