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
from projections.columnar_table import micros
from projections.columnar_views import means_by_group, quantiles_by_group
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
    # Most rows kept (the whole tenant): read the columns as they are, the other rows in a
    # group of their own, rather than gather every kept row out of every column.
    kept = int(np.count_nonzero(keep))
    rows: slice | NDArray[np.intp] = slice(None) if kept * 2 > keep.size else np.flatnonzero(keep)
    left_out = keep if isinstance(rows, slice) and kept < keep.size else None
    del keep
    labels, group = _groups(columns, by, rows, left_out)
    count = len(labels)
    tallies, hours, cycle = _per_lead(columns, rows, left_out, group, count, as_of,
                                      sla_hours)
    del group
    answered = quantiles_by_group(*hours, count, (0.5, 0.9), at_most=sla_hours)
    tallies[:, _INSIDE] = answered.at_most
    cycle_medians = quantiles_by_group(*cycle, count, (0.5,))
    cycle_means, whole_mean = means_by_group(*cycle, count)
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "sla_hours": sla_hours,
        "rows": [{"key": key, **_figures(tallies[g].tolist(), cycle_means[g],
                                         cycle_medians.per_group[g][0], answered.per_group[g])}
                 for g, key in enumerate(labels) if tallies[g, _NEW]],  # (days without leads)
        "total": _figures(tallies.sum(axis=0).tolist(), whole_mean, cycle_medians.whole[0],
                          answered.whole),
    }


def _groups(columns: Columns, by: str, rows: slice | NDArray[np.intp],
            left_out: NDArray[np.bool_] | None) -> tuple[list[str | None], NDArray[np.intp]]:
    """The groups' labels in the answer's order, and each row's group (the rows not kept,
    when `left_out` marks the kept ones, in one after the last). A period's group may
    have no leads."""
    values = columns.leads["created_day"][rows] if by in ALL_PERIODS else \
        columns.dim("lead", by)[rows]
    first = 0
    if by in ALL_PERIODS and values.size:
        first = int(np.min(values, where=left_out, initial=np.iinfo(values.dtype).max)
                    if left_out is not None else values.min())
        last = int(np.max(values, where=left_out, initial=first)
                   if left_out is not None else values.max())
    if by in ALL_PERIODS and values.size and last - first < _LABELLED_DAYS:
        # Every day from the first to the last labelled: no count of the days present.
        offsets = values - first
        present = np.arange(last - first + 1)
    else:
        # Codes as offsets from the first (or code 0): a count over their range, not a
        # sort, finds the codes present (in `bincount`'s own type, which it would cast to).
        offsets = values.astype(np.intp)
        offsets -= first
        kept = offsets if left_out is None else offsets[left_out]
        present = np.flatnonzero(np.bincount(kept)) if kept.size else np.zeros(0, np.intp)
        del kept
    del values
    labels: list[str | None] = [
        _period_label(c + first, by) if by in ALL_PERIODS else columns.strings.values[c]
        for c in present.tolist()]
    # Codes of one label (several days of a week) go to one group: number the labels.
    ordered = sorted({k for k in labels if k is not None}) + \
        ([None] if None in labels else [])
    place = {key: i for i, key in enumerate(ordered)}
    lookup = np.full(int(present[-1]) + 1 if present.size else 1, len(ordered), dtype=np.intp)
    lookup[present] = [place[k] for k in labels]
    # The rows not kept may be anywhere (a day before the first): their group comes after.
    group = np.take(lookup, offsets, mode="clip")
    if left_out is not None:
        np.copyto(group, len(ordered), where=~left_out)
    return ordered, group


Counted = tuple[NDArray[np.float64], NDArray[np.intp]]  # values and their groups
# A group's tallies, in this order.
_NEW, _CONVERTED, _QUALIFIED, _DISQUALIFIED, _ANSWERED, _INSIDE, _AWAITING, _OVERDUE = range(8)
_LABELLED_DAYS = 5000  # days from the first to the last a period grouping labels each of


def _per_lead(columns: Columns, rows: slice | NDArray[np.intp],
              left_out: NDArray[np.bool_] | None, group: NDArray[np.intp], count: int,
              as_of: datetime, sla_hours: float) -> tuple[NDArray[np.int64], Counted, Counted]:
    """Each group's tallies of the selected leads (by decision and by first-response
    standing at `as_of`; not yet how many were answered inside the SLA), the answered
    leads' first-response hours and the converted leads' days to a deal, with their groups."""
    lead = columns.leads
    moment = micros(as_of)
    status = lead["status"][rows]
    converted = status == _code(columns, "converted")
    disqualified = status == _code(columns, "disqualified")
    # A lead's decision: 1 converted, 2 qualified, 3 disqualified, else 0.
    decision = (status == _code(columns, "qualified")).view(np.uint8) * 2
    decision += converted.view(np.uint8)
    decision += disqualified.view(np.uint8) * 3
    del status
    cell = group * 4
    cell += decision
    del decision
    tallies = np.zeros((count, 8), dtype=np.int64)
    by_decision = np.bincount(cell, minlength=(count + 1) * 4)[:count * 4].reshape(count, 4)
    del cell
    tallies[:, _NEW] = by_decision.sum(axis=1)
    tallies[:, _CONVERTED:_DISQUALIFIED + 1] = by_decision[:, 1:]
    tallies[:, _QUALIFIED] += by_decision[:, 1]  # converted leads count as qualified
    created = lead["created"][rows]
    standing = created <= moment
    if left_out is not None:
        standing &= left_out
        converted &= left_out
    converted_at = lead["converted_at"][rows]
    cycle = (_in_units(converted_at[converted] - created[converted], 86400),
             group[converted])
    del converted, created
    contacted = lead["first_contact"][rows] <= moment
    contacted &= standing
    # Created by `as_of` but not contacted by then: awaiting contact unless decided.
    waiting = np.flatnonzero(standing ^ contacted)
    del standing
    waited = _waited(columns, rows, moment)
    hours = _in_units(waited[contacted], 3600)
    answered = group[contacted]
    del contacted
    tallies[:, _ANSWERED] = np.bincount(answered, minlength=count)
    closed = converted_at[waiting] <= moment
    decided_at = lead["decided_at"][waiting if isinstance(rows, slice) else rows[waiting]]
    closed |= disqualified[waiting] & (decided_at <= moment)
    awaiting = waiting[~closed]
    tallies[:, _AWAITING] = np.bincount(group[awaiting], minlength=count)
    overdue = awaiting[waited[awaiting] > timedelta(hours=sla_hours) // _MICRO]
    tallies[:, _OVERDUE] = np.bincount(group[overdue], minlength=count)
    return tallies, (hours, answered), cycle


def _in_units(micros: NDArray[np.int64], seconds: int) -> NDArray[np.float64]:
    """Whole microseconds in hours or days, in the float steps `total_seconds` takes."""
    out = micros.astype(np.float64)
    out /= 1e6
    out /= seconds
    return out


def _waited(columns: Columns, rows: slice | NDArray[np.intp], moment: int) -> NDArray[np.int64]:
    """Each selected lead's time to its first contact, or to `moment` while it has none,
    from the latest of its creation and its assignments before then (in microseconds)."""
    lead = columns.leads
    until: NDArray[np.int64] = np.minimum(lead["first_contact"][rows], moment)
    assigned = columns.lead_facts.assignments
    if isinstance(rows, slice):  # (indices as intp: numpy's fast path, a third faster)
        at_row, at = assigned["lead"].astype(np.intp), assigned["at"]
    else:
        position = np.full(lead.size, -1, dtype=np.int32)
        position[rows] = np.arange(len(rows), dtype=np.int32)
        at_row = position[assigned["lead"]]
        del position
        mine = at_row >= 0
        at_row, at = at_row[mine].astype(np.intp), assigned["at"][mine]
    since = until[at_row] - at
    until -= lead["created"][rows]
    waited = until  # now the wait
    counted = since >= 0
    np.minimum.at(waited, at_row[counted], since[counted])
    return waited


def _figures(tallies: list[int], cycle_mean: float | None, cycle_median: float | None,
             hours: list[float | None]) -> dict[str, Any]:
    """A group's figures from its tallies and its statistics."""
    new, converted, qualified, disqualified = tallies[_NEW:_DISQUALIFIED + 1]
    answered, inside, awaiting, overdue = tallies[_ANSWERED:_OVERDUE + 1]
    return {
        "new": new,
        "qualified": qualified,
        "disqualified": disqualified,
        "valid_lead_rate": ratio(qualified, qualified + disqualified),
        "converted": converted,
        "lead_conversion": ratio(converted, new),
        "lead_to_deal_days_mean": cycle_mean,
        "lead_to_deal_days_median": cycle_median,
        "answered": answered,
        "first_response_hours_median": hours[0],
        "first_response_hours_p90": hours[1],
        "within_sla": ratio(inside, answered + overdue),
        "uncontacted": awaiting,
    }
