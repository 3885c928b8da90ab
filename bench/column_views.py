"""`python -m bench.column_views`: one new question per view over a tenant's column store,
in-process, measured, never asserted.

The store is built as `salespulse-bench query` builds Redis (`services/simulate/scaled.py`:
a simulated year, its ids renamed per copy) and fed as the API loads it, a copy at a time.
Each view is then asked questions it was not asked before (a different date window each)
and the median time of three is reported; with `--snapshot`, the `Snapshot` views too
(joining every record: only for sizes a process can hold that way).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console

from projections import (
    columnar_activity,
    columnar_customers,
    columnar_cycle,
    columnar_export,
    columnar_forecast,
    columnar_revenue,
    columnar_scores,
    columnar_targets,
    cycle,
    rep_page,
    scores,
)
from projections.columnar import LOAD_ORDER, Columns
from projections.facts import Record, apply
from projections.scores import Window
from projections.snapshot import Filters, Snapshot
from services.readmodels.codec import decode
from services.simulate.scaled import copied, plan, renamed, template

console = Console()
TZ = "Asia/Shanghai"
AS_OF = datetime.fromisoformat("2017-12-31T18:00:00+08:00")


def _records(deals: int, seed: int) -> tuple[int, dict[str, dict[str, Record]]]:
    """(copies, copy 0's records): the tenant is `copies` renamed copies of them."""
    copies, per_copy = plan(deals)
    records: dict[str, dict[str, Record]] = {}
    for change in renamed(template(per_copy, seed).changes, 0):
        kind = records.setdefault(change.kind, {})
        updated = apply(kind.get(change.key), change)
        if updated is not None:
            kind[change.key] = updated
    return copies, records


def _copy(records: dict[str, dict[str, Record]], n: int) -> dict[str, dict[str, Record]]:
    return {kind: {key.decode(): decode(raw) for key, raw in by_key.items()}
            for kind, by_key in copied(records, n).items()}


def _window(n: int) -> Window:
    start = datetime(2017, 1, 1, tzinfo=AS_OF.tzinfo) + timedelta(days=n % 300)
    return Window(start, start + timedelta(days=60), AS_OF)


def _filters(n: int) -> Filters:
    start = date(2017, 1, 1) + timedelta(days=n % 300)
    return Filters(start, start + timedelta(days=60))


def _moment(n: int) -> datetime:
    """A different `as_of` for each n: questions over the whole history."""
    return AS_OF - timedelta(hours=n)


def _timed(ask: Callable[[int], Any]) -> float:
    """The median of three new questions, in ms."""
    times = []
    for n in range(3):
        began = time.perf_counter()
        ask(n * 7 + 1)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main(deals: Annotated[int, typer.Option()] = 100_000, seed: int = 7,
         snapshot: Annotated[bool, typer.Option(help="the Snapshot views too")] = False
         ) -> None:
    copies, records = _records(deals, seed)
    stages = Snapshot({"pipeline": records.get("pipeline", {})}).stages
    columns = Columns(TZ, stages)
    whole: dict[str, dict[str, Record]] = {}
    for n in range(copies):
        copy = _copy(records, n)
        for kind in LOAD_ORDER:
            columns.put_many(kind, list(copy.get(kind, {}).values()))
        if snapshot:
            for kind, by_key in copy.items():
                whole.setdefault(kind, {}).update(by_key)
    columns.trim()
    figures = {"deals": float(columns.deals["exists"].sum()),
               "columns_mb": columns.nbytes() / 1e6}
    rep = sorted(columns.rep_records)[0]
    figures["leaderboard_new_ms"] = _timed(
        lambda n: columnar_scores.leaderboard(columns, _window(n)))
    figures["rep_page_new_ms"] = _timed(
        lambda n: columnar_scores.rep_page(columns, _filters(n), _window(n), rep))
    figures["cycle_new_ms"] = _timed(lambda n: columnar_cycle.cycle(columns, _filters(n), AS_OF))
    figures["targets_new_ms"] = _timed(
        lambda n: columnar_targets.column_targets(columns, _moment(n)))
    figures["customers_new_ms"] = _timed(
        lambda n: columnar_customers.customers(columns, _filters(n), AS_OF))
    figures["rfm_new_ms"] = _timed(lambda n: columnar_customers.rfm_list(
        columns, _filters(n), AS_OF, limit=50, offset=0))
    figures["activities_new_ms"] = _timed(
        lambda n: columnar_activity.activities(columns, _filters(n), AS_OF))
    figures["revenue_new_ms"] = _timed(
        lambda n: columnar_revenue.revenue(columns, _filters(n), "month", AS_OF))
    figures["accuracy_new_ms"] = _timed(
        lambda n: columnar_forecast.accuracy(columns, _filters(n), _moment(n), "month"))
    figures["export_first_chunk_ms"] = _timed(lambda n: next(columnar_export.csv_chunks(
        columnar_export.selected_deals(columns, _filters(n)))))
    figures["export_new_ms"] = _timed(lambda n: b"".join(columnar_export.csv_chunks(
        columnar_export.selected_deals(columns, _filters(n)))))
    if snapshot:
        began = time.perf_counter()
        joined = Snapshot(whole, TZ)
        figures["snapshot_build_ms"] = (time.perf_counter() - began) * 1000
        figures["snapshot_leaderboard_new_ms"] = _timed(
            lambda n: scores.leaderboard(joined, _window(n)))
        figures["snapshot_rep_page_new_ms"] = _timed(
            lambda n: rep_page.rep_page(joined, _filters(n), _window(n), rep))
        figures["snapshot_cycle_new_ms"] = _timed(
            lambda n: cycle.cycle(joined, _filters(n), AS_OF))
    console.print(", ".join(f"{key} {value:,.1f}" for key, value in figures.items()))


if __name__ == "__main__":
    typer.run(main)
