"""The alert rules' shared indexes, kept in step change by change, equal the same indexes
listed afresh from the records; the engagement windows' counts by bisection equal a count
of every activity."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from alerts.rules import Context, RuleSettings, WonDeals, _window_counts

T1, T2 = "2017-03-01T10:00:00+08:00", "2017-03-05T09:30:00+08:00"


def _deal(status: str, owner: str, closed_at: str | None, amount: str) -> dict[str, Any]:
    return {"status": status, "owner": owner, "closed_at": closed_at, "amount": amount,
            "stages": [["prospecting", "2017-02-01T09:00:00+08:00"]]}


def _listing(won: dict[str, WonDeals]) -> dict[str, list[tuple[Any, Decimal]]]:
    """Per rep, (closed, amount) pairs; deals closed at the same moment in any order."""
    for deals in won.values():
        assert deals.closed == sorted(deals.closed) and len(deals.closed) == len(deals.amounts)
    return {rep: sorted(zip(deals.closed, deals.amounts, strict=True))
            for rep, deals in won.items() if deals.closed}


def test_won_deals_per_rep_kept_in_step_equal_a_fresh_listing() -> None:
    deals: dict[str, dict[str, Any]] = {"d0": _deal("won", "r1", T2, "70")}
    ctx = Context({"deal": deals}, RuleSettings())
    assert _listing(ctx.won_by_rep()) == {"r1": [(ctx.won_by_rep()["r1"].closed[0],
                                                  Decimal("70"))]}
    steps = [
        ("d1", _deal("won", "r1", T1, "100")),
        ("d2", _deal("won", "r1", T1, "50")),  # the same moment, another amount
        ("d3", _deal("open", "r2", None, "10")),
        ("d3", _deal("won", "r2", T2, "10")),
        ("d4", _deal("won", "r1", T1, "100")),  # the same moment and amount as d1
        ("d1", _deal("won", "r2", T1, "100")),  # a won deal's owner changed
        ("d2", _deal("won", "r1", T1, "55")),  # a won deal's amount changed
        ("d2", _deal("lost", "r1", T1, "55")),  # no longer won
        ("d4", _deal("won", "r1", T2, "100")),  # a won deal's close moved
        ("d0", _deal("lost", "r1", T2, "70")),
    ]
    for key, record in steps:
        before = deals.get(key)
        deals[key] = record
        ctx.touch("deal", key, before)

        fresh = Context({"deal": dict(deals)}, RuleSettings())
        assert _listing(ctx.won_by_rep()) == _listing(fresh.won_by_rep()), key


def test_engagement_windows_count_each_activity_in_its_half_open_window() -> None:
    s = RuleSettings()
    start = datetime(2017, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    rng = random.Random(5)
    times = sorted(start + timedelta(hours=rng.randrange(0, 24 * 200)) for _ in range(300))
    recent, prior = timedelta(days=s.engagement_recent_days), timedelta(
        days=s.engagement_prior_days)
    # every activity's own moment and those just past it, where a boundary counts or not
    for at in [*times, *(t + recent for t in times), *(t + recent + prior for t in times),
               *(t + timedelta(microseconds=1) for t in times)]:
        expected = (sum(1 for t in times if at - recent < t <= at),
                    sum(1 for t in times if at - recent - prior < t <= at - recent))
        assert _window_counts(times, at, s) == expected, at
