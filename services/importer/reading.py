"""Rows from a CSV or Excel (.xlsx) file, numbered as a spreadsheet shows them (header = 1)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class FileOptions(Protocol):
    """How a mapping says its file reads."""

    @property
    def delimiter(self) -> str: ...
    @property
    def encoding(self) -> str: ...
    @property
    def sheet(self) -> str | None: ...


class FileUnreadable(ValueError):
    """The file cannot be read as a table."""


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple[int, dict[str, Any]]]  # (row number, column -> cell value)


def read_table(path: str | Path, mapping: FileOptions) -> Table:
    path = Path(path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            return _read_xlsx(path, mapping.sheet)
        return _read_csv(path, mapping.delimiter, mapping.encoding)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FileUnreadable(f"cannot read {path}: {exc}") from None


def _blank(values: list[Any] | tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def _table(header: list[Any], records: list[tuple[int, list[Any]]]) -> Table:
    columns = tuple("" if h is None else str(h).strip() for h in header)
    rows = [(number, dict(zip(columns, values, strict=False)))
            for number, values in records if not _blank(values)]
    return Table(columns, rows)


def _read_csv(path: Path, delimiter: str, encoding: str) -> Table:
    with path.open(newline="", encoding=encoding) as source:
        reader = csv.reader(source, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise FileUnreadable(f"{path} is empty")
        # Row numbers count records, so quoted line breaks don't shift them.
        return _table(header, [(number, row) for number, row in enumerate(reader, start=2)])


def _read_xlsx(path: Path, sheet: str | None) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError) as exc:
        raise FileUnreadable(f"{path} is not an Excel workbook: {exc}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise FileUnreadable(f"{path} has no sheet {sheet!r} ({', '.join(book.sheetnames)})")
        rows = (book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise FileUnreadable(f"{path}: the sheet is empty")
        return _table(list(header), [(n, list(r)) for n, r in enumerate(rows, start=2)])
    finally:
        book.close()
