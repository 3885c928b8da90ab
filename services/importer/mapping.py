"""The column-mapping file (TOML): which column is which field, how dates and values read."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events.vocabulary import DEFAULT_TIMEZONE

# Fields a row of an opportunity export can fill; the mapping names the column for each.
REQUIRED_FIELDS = ("deal_id", "owner_id", "created_at")
OPTIONAL_FIELDS = (
    "stage", "closed_at", "amount", "won_amount", "product", "source", "lost_reason",
    "competitor", "expected_close",
    "customer_id", "customer_name", "segment", "industry", "customer_region",
    "rep_name", "team_id", "manager_id", "region",
)
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
DATE_FIELDS = ("created_at", "closed_at")
# Fields whose value may come from `[defaults]` when the file leaves it empty or lacks the column.
DEFAULTABLE = ("stage", "product", "source", "segment", "industry", "customer_region",
               "team_id", "manager_id", "region")
UNDATED_POLICIES = ("reject", "skip")


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the key at fault."""


@dataclass(frozen=True)
class Mapping:
    """How to read one kind of export. Every field maps to at most one column."""

    columns: dict[str, str]
    date_formats: tuple[str, ...] = ()  # empty: ISO 8601
    timezone: str = DEFAULT_TIMEZONE
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    stage_dates: dict[str, str] = field(default_factory=dict)  # stage -> column of its date
    created_stage: str | None = None  # stage of a deal the file shows already closed
    undated: str = "reject"  # a row with no creation date: "reject" it or "skip" it
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    sheet: str | None = None

    def column(self, name: str) -> str:
        """The file's column for a field (or the field's own name, for messages)."""
        return self.columns.get(name, name)


def load_mapping(path: str | Path) -> Mapping:
    return parse_mapping(read_document(path))


def read_document(path: str | Path) -> dict[str, Any]:
    """A mapping file's TOML, parsed; `MappingError` if it cannot be read."""
    try:
        with Path(path).open("rb") as source:
            return tomllib.load(source)
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML ({exc})") from None


def _table(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise MappingError(f"[{key}] must be a table")
    return value


def _strings(table: dict[str, Any], where: str) -> dict[str, str]:
    for key, value in table.items():
        if not isinstance(value, str):
            raise MappingError(f"{where}.{key} must be a string, not {value!r}")
    return dict(table)


def parse_mapping(raw: dict[str, Any]) -> Mapping:
    """Check a parsed TOML document and build the mapping; raise `MappingError` naming the key."""
    columns = _strings(_table(raw, "columns"), "columns")
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise MappingError(f"columns.{unknown[0]}: unknown field; known: {', '.join(FIELDS)}")
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        raise MappingError(f"columns.{missing[0]}: required (the column holding it)")
    dates = _table(raw, "dates")
    formats = dates.get("formats", [])
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise MappingError("dates.formats must be a list of strptime formats")
    timezone = dates.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise MappingError(f"dates.timezone: unknown time zone {timezone!r}") from None
    values = {}
    for name, table in _table(raw, "values").items():
        if name not in FIELDS or not isinstance(table, dict):
            raise MappingError(f"values.{name}: a table for one of the mapped fields")
        values[name] = {str(k): v for k, v in _strings(table, f"values.{name}").items()}
    defaults = _strings(_table(raw, "defaults"), "defaults")
    for name in defaults:
        if name not in DEFAULTABLE:
            raise MappingError(f"defaults.{name}: no default for this field; "
                               f"allowed: {', '.join(DEFAULTABLE)}")
    rows = _table(raw, "rows")
    undated = rows.get("undated", "reject")
    if undated not in UNDATED_POLICIES:
        raise MappingError(f"rows.undated must be one of {', '.join(UNDATED_POLICIES)}")
    created_stage = rows.get("created_stage")
    if created_stage is not None and not isinstance(created_stage, str):
        raise MappingError("rows.created_stage must be a string")
    source = _table(raw, "file")
    return Mapping(
        columns=columns,
        date_formats=tuple(formats),
        timezone=timezone,
        values=values,
        defaults=defaults,
        stage_dates=_strings(_table(raw, "stage_dates"), "stage_dates"),
        created_stage=created_stage,
        undated=undated,
        delimiter=str(source.get("delimiter", ",")),
        encoding=str(source.get("encoding", "utf-8-sig")),
        sheet=source.get("sheet"),
    )
