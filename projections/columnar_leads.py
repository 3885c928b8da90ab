"""GET /v1/leads over `Columns`: the answers `leads.py` gives over a `Snapshot` (a test
holds them byte-identical), in numpy.

Hours and days are whole microseconds as floats over 10**6 and then 3,600 or 86,400: the
float steps `timedelta.total_seconds` takes. The SLA is compared as `timedelta` compares it,
in whole microseconds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from projections.columnar import KEPT_WHOLE, Columns
from projections.columnar_rows import asked_often, chosen, indexed
from projections.columnar_table import INT64_MAX, micros
from projections.columnar_views import means_by_group, quantiles_by_group
from projections.derived import kept
from projections.leads import DEFAULT_SLA_HOURS, GROUPINGS
from projections.snapshot import ALL_PERIODS, Filters
from projections.stats import ratio

_MICRO = timedelta(microseconds=1)
_SECOND = 10**6  # microseconds


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
    chosen, again = _selected(columns, filters, by)
    count = len(chosen.labels)
    tallies, hours = _responses(columns, chosen, as_of, sla_hours, again)
    answered = quantiles_by_group(*hours, count, (0.5, 0.9), at_most=sla_hours)
    tallies[:, _INSIDE] = answered.at_most
    tallies[:, :_ANSWERED] = chosen.decided
    return {
        "by": by,
        "as_of": as_of.isoformat(),
        "sla_hours": sla_hours,
        "rows": [{"key": key, **_figures(tallies[g].tolist(), chosen.cycle_means[g],
                                         chosen.cycle_medians[g], answered.per_group[g])}
                 for g, key in enumerate(chosen.labels) if tallies[g, _NEW]],  # (days without)
        "total": _figures(tallies.sum(axis=0).tolist(), chosen.cycle_means[count],
                          chosen.cycle_medians[count], answered.whole),
    }


@dataclass(frozen=True)
class _Selection:
    """Selected leads grouped one way, and what they answer whatever the `as_of`."""

    rows: slice | NDArray[np.intp]  # all rows (then `left_out` marks the kept), or these
    left_out: NDArray[np.bool_] | None
    labels: list[str | None]  # the groups', in the answer's order
    group: NDArray[np.integer[Any]]  # each row's (rows not kept: one past the last)
    decided: NDArray[np.int64]  # each group's tallies up to `_ANSWERED`
    cycle_means: list[float | None]  # days to a deal: each group's, then all of them
    cycle_medians: list[float | None]


def _selected(columns: Columns, filters: Filters, by: str) -> tuple[_Selection, bool]:
    """The leads the filters select, grouped `by`, and whether it was kept (asked since
    the data last changed). Kept until the data change, for the next question at another
    `as_of` (dashboards ask the whole tenant and a few windows again at each): the last
    `_KEPT_SELECTIONS` of them, each a few MB at 1M deals."""
    key = (by, filters.start, filters.end, tuple(sorted(filters.dims.items())))
    version = tuple(sorted((kind, n) for kind, n in columns.versions.items()
                           if kind not in KEPT_WHOLE))
    selections: OrderedDict[Hashable, _Selection] = kept(columns, "lead selections", version,
                                                         OrderedDict)
    found = selections.get(key)
    if found is not None:
        selections.move_to_end(key)
        return found, True
    made = selections[key] = _select(columns, filters, by)
    while len(selections) > _KEPT_SELECTIONS:
        selections.popitem(last=False)
    return made, False


def _select(columns: Columns, filters: Filters, by: str) -> _Selection:
    rows, left_out = _kept_rows(columns, filters)
    labels, group = _groups(columns, by, rows, left_out)
    count = len(labels)
    decided, cycle = _decisions(columns, rows, left_out, group, count)
    medians = quantiles_by_group(*cycle, count, (0.5,))
    means, whole_mean = means_by_group(*cycle, count)
    narrow = np.uint8 if count < 1 << 8 else np.uint16 if count < 1 << 16 else np.intp
    return _Selection(rows, left_out, labels, group.astype(narrow), decided,
                      [*means, whole_mean],
                      [m[0] for m in medians.per_group] + [medians.whole[0]])


def _kept_rows(columns: Columns, filters: Filters
               ) -> tuple[slice | NDArray[np.intp], NDArray[np.bool_] | None]:
    """The leads the filters keep: as rows, or, when most rows are kept (the whole tenant),
    all of them with a mask of the kept (None: every row), to read the columns as they are
    rather than gather every kept row out of every column. A team's or a rep's are found
    without a pass over every lead (`columnar_rows`)."""
    size = columns.leads.size
    if indexed(filters.dims):
        found = chosen(columns, "lead", filters.dims, filters.start, filters.end,
                       day="created_day")
        if found.size * 2 <= size:
            return found, None
        keep = np.zeros(size, dtype=bool)
        keep[found] = True
    else:
        keep = columns.select("lead", filters.dims, filters.start, filters.end,
                              day="created_day")
    kept_rows = int(np.count_nonzero(keep))
    if kept_rows * 2 <= size:
        return np.flatnonzero(keep), None
    return slice(None), keep if kept_rows < size else None


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
_KEPT_SELECTIONS = 8
_LABELLED_DAYS = 5000  # days from the first to the last a period grouping labels each of


def _decisions(columns: Columns, rows: slice | NDArray[np.intp],
               left_out: NDArray[np.bool_] | None, group: NDArray[np.intp], count: int
               ) -> tuple[NDArray[np.int64], Counted]:
    """Each group's tallies by decision (new, converted, qualified, disqualified), and the
    converted leads' days to a deal with their groups."""
    lead = columns.leads
    status = lead["status"][rows]
    converted = status == _code(columns, "converted")
    # A lead's decision: 1 converted, 2 qualified, 3 disqualified, else 0.
    decision = (status == _code(columns, "qualified")).view(np.uint8) * 2
    decision += converted.view(np.uint8)
    decision += (status == _code(columns, "disqualified")).view(np.uint8) * 3
    del status
    cell = group * 4
    cell += decision
    del decision
    by_decision = np.bincount(cell, minlength=(count + 1) * 4)[:count * 4].reshape(count, 4)
    del cell
    decided = np.zeros((count, _ANSWERED), dtype=np.int64)
    decided[:, _NEW] = by_decision.sum(axis=1)
    decided[:, _CONVERTED:_DISQUALIFIED + 1] = by_decision[:, 1:]
    decided[:, _QUALIFIED] += by_decision[:, 1]  # converted leads count as qualified
    if left_out is not None:
        converted &= left_out
    days = lead["converted_at"][rows][converted] - lead["created"][rows][converted]
    return decided, (_in_units(days, 86400), group[converted])


def _responses(columns: Columns, chosen: _Selection, as_of: datetime, sla_hours: float,
               again: bool) -> tuple[NDArray[np.int64], Counted]:
    """Each group's tallies of first-response standing at `as_of` (answered, awaiting and
    overdue: the columns from `_ANSWERED`, not yet how many were answered inside the SLA),
    and the answered leads' first-response hours with their groups. `again`: the
    selection was asked before since the data last changed."""
    lead = columns.leads
    rows, group, count = chosen.rows, chosen.group, len(chosen.labels)
    moment = micros(as_of)
    standing = lead["created"][rows] <= moment
    if chosen.left_out is not None:
        standing &= chosen.left_out
    contacted = lead["first_contact"][rows] <= moment
    contacted &= standing
    # Created by `as_of` but not contacted by then: awaiting contact unless decided.
    waiting = np.flatnonzero(standing ^ contacted)
    del standing
    if again:
        # Asked again: every lead's wait for its first contact is kept (`as_of` only tells
        # who was contacted by then), and the waits to `as_of` made for those waiting.
        waits = _contact_waits(columns)[rows]
        hours = waits[contacted].astype(np.float64)
        if waits.dtype == np.uint32:  # whole seconds: s * 10**6 / 10**6 is s exactly
            hours /= 3600
        else:
            hours /= 1e6
            hours /= 3600
        waited = _waited(columns, waiting if isinstance(rows, slice) else rows[waiting], moment)
    else:
        waited_all = _waited(columns, rows, moment)
        hours = _in_units(waited_all[contacted], 3600)
        waited = waited_all[waiting]
        del waited_all
    answered = group[contacted].astype(np.intp)
    del contacted
    tallies = np.zeros((count, 8), dtype=np.int64)
    tallies[:, _ANSWERED] = np.bincount(answered, minlength=count)
    at = waiting if isinstance(rows, slice) else rows[waiting]
    closed = lead["converted_at"][at] <= moment
    closed |= (lead["status"][at] == _code(columns, "disqualified")) & \
        (lead["decided_at"][at] <= moment)
    awaiting = waiting[~closed]
    tallies[:, _AWAITING] = np.bincount(group[awaiting], minlength=count)
    overdue = awaiting[waited[~closed] > timedelta(hours=sla_hours) // _MICRO]
    tallies[:, _OVERDUE] = np.bincount(group[overdue], minlength=count)
    return tallies, (hours, answered)


def _in_units(micros: NDArray[np.int64], seconds: int) -> NDArray[np.float64]:
    """Whole microseconds in hours or days, in the float steps `total_seconds` takes."""
    out = micros.astype(np.float64)
    out /= 1e6
    out /= seconds
    return out


def _contact_waits(columns: Columns) -> NDArray[np.uint32] | NDArray[np.int64]:
    """Each lead's wait for its first contact, from the latest of its creation and its
    assignments before that contact (not contacted: any value); kept until the leads
    change. In whole seconds (uint32: 14 MB at 1M deals) when every wait is whole seconds
    below 2**32, as timestamps to the second give; else in microseconds (int64)."""
    def make() -> NDArray[np.uint32] | NDArray[np.int64]:
        contacted = columns.leads["first_contact"] < INT64_MAX
        waits = _waited(columns, slice(None), INT64_MAX)
        mine = waits[contacted]
        if mine.size and (int(mine.min()) < 0 or int(mine.max()) >= (1 << 32) * _SECOND):
            return waits
        # Whole seconds exactly when the quotient is whole: below 2**32 s a float's step
        # is under 10**-6, so a remainder of a microsecond or more never rounds away.
        seconds = mine.astype(np.float64)
        seconds /= _SECOND
        if np.any(seconds != np.floor(seconds)):
            return waits
        compact = np.zeros(waits.size, dtype=np.uint32)
        compact[contacted] = seconds
        return compact
    return kept(columns, "lead contact waits", columns.versions.get("lead", 0), make)


def _waited(columns: Columns, rows: slice | NDArray[np.intp], moment: int) -> NDArray[np.int64]:
    """Each selected lead's time to its first contact, or to `moment` while it has none,
    from the latest of its creation and its assignments before then (in microseconds)."""
    lead = columns.leads
    until: NDArray[np.int64] = np.minimum(lead["first_contact"][rows], moment)
    assigned = columns.lead_facts.assignments
    if isinstance(rows, slice):  # (indices as intp: numpy's fast path, a third faster)
        at_row, at = assigned["lead"].astype(np.intp), assigned["at"]
    elif (by_lead := _assignments_by_lead(columns)) is not None:  # these rows' own
        order, starts = by_lead
        first, counts = starts[rows], starts[rows + 1] - starts[rows]
        ends = np.cumsum(counts)
        mine = order[np.arange(int(ends[-1]) if ends.size else 0, dtype=np.intp)
                     + np.repeat(first - (ends - counts), counts)]
        at_row = np.repeat(np.arange(len(rows)), counts)
        at = assigned["at"][mine]
    else:  # the assignments of these rows: found by a mask (a byte a lead), then placed
        chosen = np.zeros(lead.size, dtype=bool)
        chosen[rows] = True
        mine = np.flatnonzero(chosen[assigned["lead"]])
        del chosen
        place = np.empty(lead.size, dtype=np.intp)  # only the selected rows' pages written
        place[rows] = np.arange(len(rows))
        at_row = place[assigned["lead"][mine]]
        del place
        at = assigned["at"][mine]
    since = until[at_row] - at
    until -= lead["created"][rows]
    waited = until  # now the wait
    counted = since >= 0
    np.minimum.at(waited, at_row[counted], since[counted])
    return waited


def _assignments_by_lead(columns: Columns
                         ) -> tuple[NDArray[np.int32], NDArray[np.int64]] | None:
    """Every assignment's row, lead after lead, and where each lead row's begin (one more
    at the end); made when a few leads' questions have been asked often enough since the
    records changed (`columnar_rows.asked_often`) to be worth the sort (0.2 s at 1M
    deals), which saves a pass over every assignment each (11 ms). None: not yet."""
    if not asked_often(columns, "assignments by lead"):
        return None

    def make() -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        leads = columns.lead_facts.assignments["lead"]
        starts = np.zeros(columns.leads.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(leads, minlength=columns.leads.size), out=starts[1:])
        return np.argsort(leads, kind="stable").astype(np.int32), starts
    return kept(columns, "assignments by lead", tuple(sorted(columns.versions.items())), make)


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
