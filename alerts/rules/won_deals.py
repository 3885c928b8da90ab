"""What won deals teach the rules: an owner's wins in closing order, a deal's days per stage."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from alerts.rules.settings import instant
from events.vocabulary import ts
from projections.facts import Record
from projections.stats import days_between


@dataclass(frozen=True)
class WonDeals:
    """One owner's won deals: when each closed, ascending, and its amount. Deals closed at
    the same moment may stand in any order: a pace sums whole runs of equal moments."""

    closed: list[datetime]
    amounts: list[Decimal]

    def add(self, deal: Record) -> None:
        at = bisect_right(self.closed, closed := instant(deal["closed_at"]))
        self.closed.insert(at, closed)
        self.amounts.insert(at, Decimal(deal["amount"]))

    def remove(self, deal: Record) -> None:
        """Take out a deal as it was added (one of those equal to it, which is the same)."""
        closed, amount = instant(deal["closed_at"]), Decimal(deal["amount"])
        for at in range(bisect_left(self.closed, closed), bisect_right(self.closed, closed)):
            if self.amounts[at] == amount:
                del self.closed[at], self.amounts[at]
                return
        raise ValueError(f"no deal won at {closed} for {amount}")


def won_dwell(deal: Record) -> dict[str, float]:
    """Per stage, total days a closed deal spent in it over all visits."""
    result: dict[str, float] = defaultdict(float)
    stages = deal["stages"]
    for index, (stage, entered) in enumerate(stages):
        left = stages[index + 1][1] if index + 1 < len(stages) else deal["closed_at"]
        result[stage] += days_between(ts(entered), ts(left))
    return dict(result)
