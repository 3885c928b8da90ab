"""A spreadsheet cell as text or as an aware moment: what every importer reads the same way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an id or amount a spreadsheet stored as 1001.0
    return str(value).strip()


def moment_of(value: Any, timezone: str, parse: Callable[[str], datetime]) -> datetime | None:
    """A cell as an aware moment: a date at midnight, text read by `parse`, and a time
    without offset in `timezone`. None: the cell is empty."""
    zone = ZoneInfo(timezone)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        raw = text(value)
        if not raw:
            return None
        moment = parse(raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
