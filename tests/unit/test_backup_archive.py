"""The backup file (services/backup/archive.py): what is written reads back whole, and a
file that is truncated, altered or of another format version is refused, saying why."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from services.backup import archive

EVENTS = [[1, "76bbd9a1-9095-5eb2-b551-525b06a799a6", 1, "events.ledger:SalesSubject.Created",
           "eyJhIjoxfQ=="],
          [3, "0f3c2f55-8e0a-5c8a-9a55-0f1f4f7d3a10", 1, "events.ledger:SalesSubject.Created",
           "eyLkuK3mlocifQ=="]]
KEYS = [["k-1", "acme", "admin"]]


def written(path: Path, events: list[list[object]] = EVENTS) -> Path:
    writer = archive.ArchiveWriter(path, "sqlite:test.sqlite", ["events", "keys"])
    writer.open_section("events", ["notification_id", "originator_id", "originator_version",
                                   "topic", "state"])
    writer.rows(events)
    writer.close_section()
    writer.open_section("keys", ["key", "tenant", "role"])
    writer.rows(KEYS)
    writer.close_section()
    writer.seal()
    return path


def lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def rewrite(path: Path, content: list[bytes]) -> None:
    path.write_bytes(gzip.compress(b"".join(content)))


def test_every_section_reads_back_in_order_with_its_counts(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    checked = archive.check(path)
    assert checked.header.sections == ("events", "keys")
    assert checked.header.source == "sqlite:test.sqlite"
    assert checked.counts == {"events": 2, "keys": 1}
    assert checked.columns["keys"] == ("key", "tenant", "role")
    assert list(archive.rows(path, "events")) == EVENTS
    assert list(archive.rows(path, "keys")) == KEYS


def test_an_empty_store_gives_an_intact_file_with_no_rows(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz", events=[])
    assert archive.check(path).counts == {"events": 0, "keys": 1}
    assert list(archive.rows(path, "events")) == []


def test_a_file_cut_inside_its_compressed_data_is_refused_as_truncated(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(archive.ArchiveUnusable, match="truncated"):
        archive.check(path)


def test_a_file_cut_at_a_line_is_refused_as_truncated(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    rewrite(path, lines(path)[:3])  # header, section opening, first row
    with pytest.raises(archive.ArchiveUnusable, match="ends before its trailer"):
        archive.check(path)


def test_a_changed_row_is_refused_by_the_checksum(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    content = lines(path)
    content[2] = content[2].replace(b"eyJhIjoxfQ==", b"eyJhIjoyfQ==")
    rewrite(path, content)
    with pytest.raises(archive.ArchiveUnusable, match="checksum mismatch"):
        archive.check(path)


def test_a_dropped_row_is_refused_even_with_the_counts_edited(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    content = lines(path)
    del content[3]
    content[3] = b'{"end":"events","count":1}\n'
    rewrite(path, content)
    with pytest.raises(archive.ArchiveUnusable, match="checksum mismatch"):
        archive.check(path)


def test_another_format_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = written(tmp_path / "b.gz")
    content = lines(path)
    header = orjson.loads(content[0])
    content[0] = orjson.dumps({**header, "version": 2}) + b"\n"
    rewrite(path, content)
    with pytest.raises(archive.ArchiveUnusable, match="version 2 cannot be read.*version 1"):
        archive.check(path)


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "events.jsonl.gz"
    other.write_bytes(gzip.compress(b'{"id":"e-1","type":"deal.won"}\n'))
    with pytest.raises(archive.ArchiveUnusable, match="not a salespulse backup"):
        archive.check(other)
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    with pytest.raises(archive.ArchiveUnusable, match="not gzip"):
        archive.check(plain)


def test_the_file_appears_only_once_sealed(tmp_path: Path) -> None:
    path = tmp_path / "b.gz"
    writer = archive.ArchiveWriter(path, "sqlite:test.sqlite", ["events"])
    writer.open_section("events", ["notification_id"])
    writer.rows([[1]])
    assert not path.exists()
    writer.discard()
    assert list(tmp_path.iterdir()) == []
