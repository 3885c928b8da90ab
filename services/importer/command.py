"""`salespulse import FILE --mapping MAPPING.toml`: read, convert, deliver, report.

A mapping with `format = ...` reads a CRM change log (`changelog`), any other an export
of one row per deal (`convert`).

Exit codes: 0 every row imported; 1 the file or mapping cannot be used (nothing sent);
3 some rows were rejected (the rest were imported); 4 the API or event store could not
be reached (what was sent before stays; importing again resumes, as ids repeat).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table as RichTable

from services.importer.changelog import convert_changes
from services.importer.changelog_mapping import (
    ChangeMapping,
    is_change_log,
    parse_change_mapping,
)
from services.importer.convert import Conversion, Rejection, convert
from services.importer.mapping import Mapping, MappingError, parse_mapping, read_document
from services.importer.reading import FileUnreadable, read_table
from services.importer.sending import ApiSink, Delivery, LedgerSink, Sink, Unreachable, deliver

OK, UNUSABLE, ROWS_REJECTED, UNREACHABLE = 0, 1, 3, 4
SHOWN_REJECTIONS = 200


@dataclass(frozen=True)
class ImportRequest:
    file: Path
    mapping: Path
    api: str = "http://127.0.0.1:8000"
    direct: bool = False
    tenant: str | None = None
    batch_size: int = 1000
    progress: bool = True
    rejected_out: Path | None = None  # the rejected rows as CSV (row, column, reason)
    api_key: str | None = None  # through the API: an ingest or admin key of the tenant
    deals: Path | None = None  # a change log's deals export (Salesforce Opportunity)


def run(request: ImportRequest, console: Console) -> int:
    """Import one file; returns the exit code (see the module docstring)."""
    try:
        mapping, conversion = _convert(request, console)
    except (MappingError, FileUnreadable) as exc:
        console.print(f"[red]cannot import:[/] {exc}")
        return UNUSABLE
    delivery = Delivery()
    code = OK
    try:
        with _sink(request) as sink, Progress(console=console,
                                             disable=not request.progress) as bar:
            task = bar.add_task("importing events", total=len(conversion.events))
            delivery = deliver(conversion.events, sink, mapping, batch_size=request.batch_size,
                               advance=lambda n: bar.advance(task, n))
    except Unreachable as exc:
        delivery = getattr(exc, "delivery", delivery)
        console.print(f"[red]unreachable:[/] {exc}")
        code = UNREACHABLE
    rejected = sorted(conversion.rejected + delivery.rejected, key=lambda r: r.row)
    _report(console, conversion, delivery, rejected, complete=code == OK)
    if request.rejected_out:
        _write_rejections(request.rejected_out, rejected)
    if code == OK and rejected:
        code = ROWS_REJECTED
    return code


def _convert(request: ImportRequest,
             console: Console) -> tuple[Mapping | ChangeMapping, Conversion]:
    raw = read_document(request.mapping)
    if not is_change_log(raw):
        if request.deals:
            raise MappingError("--deals joins a change log; this mapping has no `format`")
        mapping = parse_mapping(raw)
        return mapping, convert(read_table(request.file, mapping), mapping, request.file.name)
    changes = parse_change_mapping(raw)
    with console.status(f"reading the {changes.format} change log"):
        deals = read_table(request.deals, changes) if request.deals else None
        return changes, convert_changes(read_table(request.file, changes), changes, deals)


@contextmanager
def _sink(request: ImportRequest) -> Iterator[Sink]:
    if not request.direct:
        with httpx.Client(timeout=120) as client:
            yield ApiSink(request.api, client, request.api_key)
        return
    from services import bootstrap
    from services.settings import Settings

    settings = Settings()
    ledger = bootstrap.ledger(settings)
    try:
        yield LedgerSink(ledger, request.tenant or settings.default_tenant,
                         settings.tenant_timezone)
    finally:
        ledger.close()


def _write_rejections(path: Path, rejected: list[Rejection]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["row", "column", "reason"])
        writer.writerows([r.row, r.column, r.message] for r in rejected)


def _report(console: Console, conversion: Conversion, delivery: Delivery,
            rejected: list[Rejection], *, complete: bool) -> None:
    if rejected:
        table = RichTable("row", "column", "reason", title="rejected rows", title_justify="left")
        for r in rejected[:SHOWN_REJECTIONS]:
            table.add_row(str(r.row), escape(r.column), escape(r.message))
        console.print(table)
        if len(rejected) > SHOWN_REJECTIONS:
            console.print(f"… and {len(rejected) - SHOWN_REJECTIONS} more")
    if conversion.skipped:
        reasons = Counter(_reason(r) for r in conversion.skipped)
        console.print("skipped rows: " + "; ".join(f"{n} × {escape(reason)}"
                                                   for reason, n in reasons.most_common()))
    rows = {r.row for r in rejected}
    imported = conversion.rows - len(rows) - len(conversion.skipped)
    console.print(
        f"rows read {conversion.rows}, "
        + (f"imported {imported}, " if complete else "import interrupted, ")
        + f"rejected {len(rows)}, "
        f"skipped {len(conversion.skipped)}; events accepted {delivery.accepted}, "
        f"duplicate {delivery.duplicate}"
        + "".join(f", {status} {n}" for status, n in sorted(delivery.others.items()))
        + (f", already known reps/customers {delivery.dropped}" if delivery.dropped else ""))
    if delivery.partial_rows:
        console.print(f"[yellow]rows {sorted(delivery.partial_rows)} were refused after some of "
                      "their events were stored; those events stay[/]")


def _reason(skip: Rejection) -> str:
    """A skip's reason without the row it repeats, so like skips count together."""
    return "a repeated row" if skip.message.startswith("the same as row") else skip.message
