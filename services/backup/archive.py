"""The backup file: gzip'ed JSON lines, in sections, sealed by a checksum.

    {"format": "salespulse-backup", "version": 1, "created_at": …, "source": …,
     "sections": ["events"]}                                       header
    {"section": "events", "columns": ["notification_id", …]}       a section opens
    [1, "6f1c…", 1, "services.eventstore.ledger:SalesSubject.Created", "eyJ…"]  a row a line
    {"end": "events", "count": 1}                                  the section closes
    {"trailer": {"events": 1}, "sha256": "…"}                      counts and checksum

The checksum is the SHA-256 of every uncompressed byte before the trailer line. A file
is read once to check all of it (structure, counts, checksum) before any row is used, so
a truncated, corrupted or foreign file is refused before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FORMAT = "salespulse-backup"
VERSION = 1


class ArchiveUnusable(Exception):
    """The file is not a complete, intact backup this version can read."""


@dataclass(frozen=True)
class Header:
    created_at: str
    source: str
    sections: tuple[str, ...]


@dataclass(frozen=True)
class Checked:
    """What a verified file holds: its header, and the columns and row count per section."""

    header: Header
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


class ArchiveWriter:
    """Writes one backup file; it appears under its name only once sealed by its trailer."""

    def __init__(self, path: Path, source: str, sections: Sequence[str]) -> None:
        self.path, self.partial = path, path.with_name(path.name + ".partial")
        self.digest = hashlib.sha256()
        self.counts: dict[str, int] = {}
        self.sections = tuple(sections)
        self._open: str | None = None
        self._file = gzip.GzipFile(self.partial, "wb", compresslevel=6)
        self._line({"format": FORMAT, "version": VERSION,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "source": source, "sections": list(self.sections)})

    def _line(self, value: Any) -> None:
        line = orjson.dumps(value) + b"\n"
        self.digest.update(line)
        self._file.write(line)

    def open_section(self, name: str, columns: Sequence[str]) -> None:
        expected = self.sections[len(self.counts)] if len(self.counts) < len(self.sections) \
            else None
        assert self._open is None and name == expected, (name, expected)
        self._open, self.counts[name] = name, 0
        self._line({"section": name, "columns": list(columns)})

    def rows(self, rows: Sequence[Sequence[Any]]) -> None:
        assert self._open is not None
        for row in rows:
            self._line(list(row))
        self.counts[self._open] += len(rows)

    def close_section(self) -> None:
        assert self._open is not None
        self._line({"end": self._open, "count": self.counts[self._open]})
        self._open = None

    def seal(self) -> int:
        """Write the trailer and give the file its name; returns its size in bytes."""
        assert self._open is None and tuple(self.counts) == self.sections
        trailer = orjson.dumps({"trailer": self.counts, "sha256": self.digest.hexdigest()})
        self._file.write(trailer + b"\n")
        self._file.close()
        self.partial.replace(self.path)
        return self.path.stat().st_size

    def discard(self) -> None:
        self._file.close()
        self.partial.unlink(missing_ok=True)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with gzip.open(path, "rb") as file:
            yield from enumerate(file, 1)
    except FileNotFoundError:
        raise ArchiveUnusable(f"{path}: no such file") from None
    except EOFError:
        raise ArchiveUnusable(f"{path} is truncated: the compressed data ends early") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise ArchiveUnusable(f"{path} is corrupt or not gzip: {exc}") from None


def _json(number: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ArchiveUnusable(f"line {number} is not JSON: the file is corrupt") from None


def _header(number: int, line: bytes) -> Header:
    head = _json(number, line)
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ArchiveUnusable("not a salespulse backup: the first line is not its header")
    if head.get("version") != VERSION:
        raise ArchiveUnusable(f"backup format version {head.get('version')!r} cannot be read "
                              f"by this salespulse (it reads version {VERSION})")
    return Header(str(head["created_at"]), str(head["source"]), tuple(head["sections"]))


def check(path: Path) -> Checked:
    """Read the whole file and verify it; raise ArchiveUnusable saying what is wrong."""
    digest = hashlib.sha256()
    header: Header | None = None
    checked: Checked | None = None
    current: str | None = None
    columns: dict[str, tuple[str, ...]] = {}
    counts: dict[str, int] = {}
    for number, line in _lines(path):
        if checked is not None and line.strip():
            raise ArchiveUnusable(f"line {number} follows the trailer: the file is corrupt")
        if header is None:
            header = _header(number, line)
        elif line.startswith(b"["):
            if current is None:
                raise ArchiveUnusable(f"line {number}: a row outside any section")
            counts[current] += 1
        else:
            value = _json(number, line)
            if not isinstance(value, dict):
                raise ArchiveUnusable(f"line {number}: neither a row nor a section marker")
            if "trailer" in value:
                if current is not None:
                    raise ArchiveUnusable(f"the trailer comes before section {current} ends")
                if value["sha256"] != digest.hexdigest():
                    raise ArchiveUnusable("checksum mismatch: the content is not what was "
                                          "written (corrupted or edited)")
                if value["trailer"] != counts or tuple(counts) != header.sections:
                    raise ArchiveUnusable(f"the trailer's counts {value['trailer']} disagree "
                                          f"with the sections read {counts}")
                checked = Checked(header, columns, counts)
                continue
            if "section" in value and current is None:
                current = str(value["section"])
                if len(counts) >= len(header.sections) or header.sections[len(counts)] != current:
                    raise ArchiveUnusable(f"line {number}: section {current} is not the one "
                                          f"the header announces next")
                columns[current], counts[current] = tuple(value["columns"]), 0
            elif value.get("end") == current and current is not None:
                if value.get("count") != counts[current]:
                    raise ArchiveUnusable(f"section {current} says {value.get('count')} rows, "
                                          f"holds {counts[current]}")
                current = None
            else:
                raise ArchiveUnusable(f"line {number}: unexpected {line[:80]!r}")
        digest.update(line)
    if header is None:
        raise ArchiveUnusable(f"{path} is empty")
    if checked is None:
        raise ArchiveUnusable(f"{path} is truncated: it ends before its trailer")
    return checked


def rows(path: Path, section: str) -> Iterator[list[Any]]:
    """The rows of one section of a file `check` has accepted, in their order."""
    inside = False
    for number, line in _lines(path):
        if inside and line.startswith(b"["):
            yield _json(number, line)
        elif line.startswith(b"{"):
            value = _json(number, line)
            if value.get("section") == section:
                inside = True
            elif inside:
                return
