"""`salespulse backup FILE` and `salespulse restore FILE`.

Restore writes one transaction per batch (the recorder's `insert_events`), not one for
everything: a single transaction would hold the whole history in one statement or reach
into the recorder's private cursor API. An interrupted restore is therefore resumable
instead of undone: run it again and it continues after the rows the target already holds,
once it has checked they are exactly this file's first rows. Any other non-empty target
is refused.

Exit codes: 0 done; 1 file unusable, target not empty, or verification failed (nothing
written, or nothing more); 4 event store unreachable (run again: a restore resumes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from eventsourcing.persistence import IntegrityError, PersistenceError
from rich.console import Console
from rich.progress import Progress

from services.backup import archive
from services.backup.sections import Row, Section, describe, open_sections
from services.settings import Settings

OK, UNUSABLE, UNREACHABLE = 0, 1, 4


@dataclass(frozen=True)
class Options:
    file: Path
    batch_size: int = 5000
    overwrite: bool = False
    progress: bool = True


class Refused(Exception):
    """The target cannot take this backup (nothing written), or does not hold it after."""


@dataclass
class Tally:
    written: int = 0  # rows written by this run, however it ends


def backup(options: Options, settings: Settings, console: Console) -> int:
    """Write every section of the store to `options.file`; returns the exit code."""
    if options.file.exists() and not options.overwrite:
        console.print(f"[red]cannot back up:[/] {options.file} exists (--overwrite replaces it)")
        return UNUSABLE
    started = time.perf_counter()
    writer: archive.ArchiveWriter | None = None
    try:
        with open_sections(settings) as sections, _bar(options, console) as bar:
            writer = archive.ArchiveWriter(options.file, describe(settings),
                                           [s.name for s in sections])
            for section in sections:
                task = bar.add_task(f"backing up {section.name}", total=section.size())
                writer.open_section(section.name, section.columns)
                for batch in section.read(options.batch_size):
                    writer.rows(batch)
                    bar.advance(task, len(batch))
                writer.close_section()
                bar.update(task, total=writer.counts[section.name],
                           completed=writer.counts[section.name])
            size = writer.seal()
    except OSError as exc:
        _discard(writer)
        console.print(f"[red]cannot back up:[/] {exc}")
        return UNUSABLE
    except PersistenceError as exc:
        _discard(writer)
        console.print(f"[red]event store unreachable:[/] {type(exc).__name__}: {exc}")
        return UNREACHABLE
    seconds = time.perf_counter() - started
    rows = sum(writer.counts.values())
    console.print(f"backed up {_counts(writer.counts)} from {describe(settings)} to "
                  f"{options.file}: {size / 1e6:,.2f} MB ({size / max(rows, 1):,.0f} bytes/row), "
                  f"{seconds:,.2f} s, {rows / seconds:,.0f} rows/s")
    return OK


def restore(options: Options, settings: Settings, console: Console) -> int:
    """Load `options.file` into an empty store (or finish an interrupted restore)."""
    started = time.perf_counter()
    try:
        with console.status(f"checking {options.file}"):
            checked = archive.check(options.file)
    except archive.ArchiveUnusable as exc:
        console.print(f"[red]cannot restore:[/] {exc}")
        return UNUSABLE
    checking = time.perf_counter() - started
    console.print(f"{options.file}: backup of {checked.header.source} taken "
                  f"{checked.header.created_at}, {_counts(checked.counts)}, intact")
    tally = Tally()
    try:
        with open_sections(settings) as sections:
            by_name = _match(checked, sections)
            held = {name: _held(by_name[name], options.file, options.batch_size)
                    for name in checked.header.sections}
            loading = time.perf_counter()
            with _bar(options, console) as bar:
                for name in checked.header.sections:
                    _load(by_name[name], options, checked.counts[name], held[name], bar, tally)
            loading = time.perf_counter() - loading
            verifying = time.perf_counter()
            for name in checked.header.sections:
                _verify(by_name[name], options.file, options.batch_size, checked.counts[name])
            verifying = time.perf_counter() - verifying
    except (Refused, archive.ArchiveUnusable, OSError) as exc:
        console.print(f"[red]cannot restore:[/] {exc}")
        return UNUSABLE
    except IntegrityError as exc:
        console.print(f"[red]restore stopped:[/] the target changed while it ran (another "
                      f"writer?): {exc}")
        return UNUSABLE
    except PersistenceError as exc:
        console.print(f"[red]event store unreachable:[/] {type(exc).__name__}: {exc}; "
                      f"{tally.written} rows written this run; run the same restore again to "
                      "finish")
        return UNREACHABLE
    resumed = sum(held.values())
    console.print(f"restored {_counts(checked.counts)} into {describe(settings)}"
                  + _resumed(resumed, sum(checked.counts.values()))
                  + f": {tally.written} written in {loading:,.2f} s, "
                  f"{tally.written / max(loading, 1e-9):,.0f} rows/s; checked the file in "
                  f"{checking:,.2f} s, verified the store in {verifying:,.2f} s")
    return OK


def _match(checked: archive.Checked, sections: list[Section]) -> dict[str, Section]:
    known = {s.name: s for s in sections}
    for name in checked.header.sections:
        if name not in known:
            raise Refused(f"the backup has a section {name!r} this salespulse does not know")
        if checked.columns[name] != known[name].columns:
            raise Refused(f"section {name} has columns {list(checked.columns[name])}, this "
                          f"salespulse expects {list(known[name].columns)}")
    return known


def _prefix(section: Section, file: Path, batch_size: int) -> int | None:
    """How many rows the target holds if they are exactly the file's first rows, else None."""
    expected = archive.rows(file, section.name)
    held = 0
    for batch in section.read(batch_size):
        for stored in batch:
            wanted = next(expected, None)
            if wanted is None or _comparable(section, stored) != _comparable(section, wanted):
                return None
            held += 1
    return held


def _held(section: Section, file: Path, batch_size: int) -> int:
    """Rows of an interrupted restore of this file; Refused for any other non-empty target."""
    held = _prefix(section, file, batch_size)
    if held is None:
        raise Refused(f"the target's {section.name} are not empty (and are not the start of "
                      f"this backup): restore only into an empty store")
    return held


def _load(section: Section, options: Options, total: int, held: int, bar: Progress,
          tally: Tally) -> None:
    task = bar.add_task(f"restoring {section.name}", total=total, completed=held)
    rows = islice(archive.rows(options.file, section.name), held, None)
    for batch in _batches(rows, options.batch_size):
        section.write(batch)
        tally.written += len(batch)
        bar.advance(task, len(batch))


def _verify(section: Section, file: Path, batch_size: int, count: int) -> None:
    held = _prefix(section, file, batch_size)
    if held != count:
        raise Refused(f"verification failed: the target's {section.name} are not the backup's "
                      f"{count} rows" + (f" (it holds {held} of them)" if held is not None
                                         else " (they differ)"))


def _comparable(section: Section, row: Row) -> Row:
    return [value for column, value in zip(section.columns, row, strict=True)
            if column not in section.assigned]


def _batches(rows: Iterator[Row], size: int) -> Iterator[Sequence[Row]]:
    while batch := list(islice(rows, size)):
        yield batch


def _resumed(held: int, total: int) -> str:
    if held == total:
        return " (the target already held all of it: nothing to write)"
    return f" ({held} already there from an interrupted run)" if held else ""


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items())


def _bar(options: Options, console: Console) -> Progress:
    return Progress(console=console, disable=not options.progress)


def _discard(writer: archive.ArchiveWriter | None) -> None:
    if writer is not None:
        writer.discard()
