"""GET /v1/leads over `Columns`: the answers `leads.py` gives over a `Snapshot` (a test
holds them byte-identical), in numpy.

Hours and days are whole microseconds as floats over 10**6 and then 3,600 or 86,400: the
float steps `timedelta.total_seconds` takes. The SLA is compared as `timedelta` compares it,
in whole microseconds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import Columns
from projections.columnar_table import dense_codes, micros, split_by_code
from projections.columnar_views import mean_of, quantile_of
from projections.leads import DEFAULT_SLA_HOURS, GROUPINGS
from projections.snapshot import ALL_PERIODS, Filters
from projections.stats import ratio

_MICRO = timedelta(microseconds=1)


def _period_label(day: int, by: str) -> str:
    """`Snapshot.period_key` of a local day (a proleptic ordinal)."""
    local = date.fromordinal(day)
    if by == "day":
        return local.isoformat()
    if by == "week":
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if by == "month":
        return f"{local.year:04d}-{local.month:02d}"
    if by == "quarter":
        return f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}"
    return f"{local.year:04d}"


def _code(columns: Columns, value: str) -> int:
    return columns.strings.find(value) or -1


def leads(columns: Columns, filters: Filters, by: str, as_of: datetime,
          sla_hours: float = DEFAULT_SLA_HOURS) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    keep = columns.select("lead", filters.dims, filters.start, filters.end, day="created_day")
    rows = np.flatnonzero(keep)
    del keep
    figures = _per_lead(columns, rows, as_of, sla_hours)
    grouped_by = columns.leads["created_day"] if by in ALL_PERIODS else columns.dim("lead", by)
    values = grouped_by[rows].astype(np.intp)
    first = int(values.min()) if by in ALL_PERIODS and values.size else 0
    codes, inverse = dense_codes(values - first)  # a count over the codes, not a sort
    labels: list[str | None] = [
        _period_label(c + first, by) if by in ALL_PERIODS else columns.strings.values[c]
        for c in codes.tolist()]
    # Codes of one label (several days of a week) go to one group: number the labels.
    ordered = sorted({k for k in labels if k is not None}) + \
        ([None] if None in labels else [])
    place = {key: i for i, key in enumerate(ordered)}
    group = np.array([place[k] for k in labels], dtype=np.intp)[inverse] \
        if labels else np.zeros(0, dtype=np.intp)
    out_rows = [{"key": key, **_figures(figures, members, sla_hours)}
                for key, members in zip(ordered, split_by_code(group, len(ordered),
                                                               np.arange(len(rows))),
                                        strict=True)]
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "sla_hours": sla_hours,
        "rows": out_rows,
        "total": _figures(figures, np.arange(len(rows)), sla_hours),
    }


def _per_lead(columns: Columns, rows: NDArray[np.intp], as_of: datetime,
              sla_hours: float) -> dict[str, NDArray[Any]]:
    """Each selected lead's decision, conversion and first-response standing at `as_of`."""
    lead = columns.leads
    moment = micros(as_of)
    status = lead["status"][rows]
    converted = status == _code(columns, "converted")
    created = lead["created"][rows]
    converted_at = lead["converted_at"][rows]
    cycle = np.where(converted, (converted_at - created).astype(np.float64) / 1e6 / 86400,
                     np.nan)
    first = lead["first_contact"][rows]
    standing = created <= moment
    contacted = standing & (first <= moment)
    until = np.where(contacted, first, moment)
    start = created.copy()
    # The latest assignment at or before the clock stops, where later than the creation.
    assigned = columns.lead_facts.assignments
    position = np.full(lead.size, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    at_row = position[assigned["lead"]]
    mine = at_row >= 0
    at_row, at = at_row[mine], assigned["at"][mine]
    counted = at <= until[at_row]
    np.maximum.at(start, at_row[counted], at[counted])
    waited = until - start
    hours = np.where(contacted, waited.astype(np.float64) / 1e6 / 3600, np.nan)
    closed = (converted_at <= moment) | (
        (status == _code(columns, "disqualified")) & (lead["decided_at"][rows] <= moment))
    awaiting = standing & ~contacted & ~closed
    sla = timedelta(hours=sla_hours) // _MICRO
    return {
        "qualified": converted | (status == _code(columns, "qualified")),
        "disqualified": status == _code(columns, "disqualified"),
        "converted": converted,
        "cycle": cycle,
        "hours": hours,
        "overdue": awaiting & (waited > sla),
        "awaiting": awaiting,
    }


def _figures(per_lead: dict[str, NDArray[Any]], members: NDArray[np.intp],
             sla_hours: float) -> dict[str, Any]:
    qualified = int(per_lead["qualified"][members].sum())
    disqualified = int(per_lead["disqualified"][members].sum())
    converted = int(per_lead["converted"][members].sum())
    cycle = per_lead["cycle"][members]
    hours = per_lead["hours"][members]
    hours = hours[~np.isnan(hours)]
    inside = int((hours <= sla_hours).sum())
    overdue = int(per_lead["overdue"][members].sum())
    return {
        "new": int(members.size),
        "qualified": qualified,
        "disqualified": disqualified,
        "valid_lead_rate": ratio(qualified, qualified + disqualified),
        "converted": converted,
        "lead_conversion": ratio(converted, int(members.size)),
        "lead_to_deal_days_mean": mean_of(cycle),
        "lead_to_deal_days_median": quantile_of(cycle, 0.5),
        "answered": int(hours.size),
        "first_response_hours_median": quantile_of(hours, 0.5),
        "first_response_hours_p90": quantile_of(hours, 0.9),
        "within_sla": ratio(inside, int(hours.size) + overdue),
        "uncontacted": int(per_lead["awaiting"][members].sum()),
    }
