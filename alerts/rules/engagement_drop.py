"""A customer whose recent rate of interactions fell below a share of the prior rate."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from datetime import datetime, timedelta
from heapq import merge
from itertools import groupby
from operator import itemgetter

from alerts.rules.context import Context
from alerts.rules.settings import Assessment, RuleSettings, span_of_days


def _window_counts(times: list[datetime], at: datetime, s: RuleSettings) -> tuple[int, int]:
    """How many of the ascending `times` fall in (at - recent, at] and in the prior window
    before it: three bisections, not a pass over every activity for each edge looked at."""
    recent_from = at - span_of_days(s.engagement_recent_days)
    prior_from = recent_from - span_of_days(s.engagement_prior_days)
    recent_start = bisect_right(times, recent_from)
    return (bisect_right(times, at) - recent_start,
            recent_start - bisect_right(times, prior_from))


def _engaged(times: list[datetime], at: datetime, s: RuleSettings) -> bool | None:
    """Whether the recent rate is below the drop share of the prior rate at `at`."""
    recent, prior = _window_counts(times, at, s)
    return prior > 0 and (recent / s.engagement_recent_days
                          < s.engagement_drop * prior / s.engagement_prior_days)


def _shifted(times: list[datetime], rank: int, shift: timedelta,
             indexes: range) -> Iterator[tuple[datetime, int, int]]:
    for i in indexes:
        yield times[i] + shift, rank, i


def _edges_after(times: list[datetime], now: datetime,
                 shifts: tuple[timedelta, ...]) -> Iterator[datetime]:
    """Ascending, the distinct instants after `now` among the ascending `times` shifted by
    each of `shifts`: merged lazily, as far as the caller reads. Of equal instants the one
    from the first shift, then the earliest time, stands for them (as in a set built in
    that order)."""
    streams = [_shifted(times, rank, shift, range(bisect_right(times, now - shift), len(times)))
               for rank, shift in enumerate(shifts)]
    for at, _run in groupby(merge(*streams), key=itemgetter(0)):
        yield at


def _edges_until(times: list[datetime], now: datetime,
                 shifts: tuple[timedelta, ...]) -> Iterator[datetime]:
    """The same instants at or before `now`, descending."""
    streams = [_shifted(times, rank, shift, range(bisect_right(times, now - shift) - 1, -1, -1))
               for rank, shift in enumerate(shifts)]
    for _at, run in groupby(merge(*streams, reverse=True), key=itemgetter(0)):
        *_, first = run  # descending: the first shift's, earliest time's, comes last
        yield first[0]


def engagement_drop(ctx: Context, key: str, now: datetime) -> Assessment:
    s = ctx.settings
    logged = ctx.customer_times(key)
    times = logged[:bisect_right(logged, now)]
    if not times:
        return Assessment("engagement_drop", key, None)
    # Between activities the counts change only when one leaves a window: the edges are
    # the activities and the moments each leaves the recent and the prior window. The
    # answer is constant from one edge to the next (windows are half-open).
    shifts = (timedelta(0), span_of_days(s.engagement_recent_days),
              span_of_days(s.engagement_recent_days + s.engagement_prior_days))
    since: datetime | None
    if _engaged(times, now, s):
        since = now
        for edge in _edges_until(times, now, shifts):
            if not _engaged(times, edge, s):
                break
            since = edge
        until = next((e for e in _edges_after(times, now, shifts)
                      if not _engaged(times, e, s)), None)
    else:
        since = next((e for e in _edges_after(times, now, shifts)
                      if _engaged(times, e, s)), None)
        until = None
    recent, prior = _window_counts(times, now, s)
    key_customer = ctx.is_key_customer(key)
    return Assessment(
        "engagement_drop", key, since, until,
        f"{recent} interactions in the last {s.engagement_recent_days:g} days; "
        f"{prior} in the {s.engagement_prior_days:g} days before",
        "high" if key_customer else "medium", ctx.account_owner(key),
        {"recent": recent, "prior": prior, "key_customer": key_customer})

