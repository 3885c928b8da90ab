"""The alert engine: events and the passing of time in, alert transitions out. Pure.

It folds each tenant's events into fact records (`projections.facts.apply`),
re-assesses the rules a change may affect (`rules.touched`: some only while they alert,
some only while they do not), and keeps a heap of the moments an answer
changes with no new event (a threshold crossed, a period over). Time is given, never read:
`apply(change)` first advances to the event's time, and the caller advances to the wall
clock when it has caught up. So a replay of history fires every alert at its historical
moment, and the same input always gives the same transitions (with the same ids).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alerts.lifecycle import Alert, Transition, alert_id, opened, resolved
from alerts.rules import (
    ASSESS,
    KINDS,
    Assessment,
    Context,
    RuleSettings,
    touched,
    ts,
)
from projections.facts import Change, Record, apply


@dataclass
class TenantAlerts:
    ctx: Context
    open: dict[tuple[str, str], Alert] = field(default_factory=dict)
    due: dict[tuple[str, str], datetime] = field(default_factory=dict)


class AlertEngine:
    def __init__(self, settings: Callable[[str], RuleSettings] | RuleSettings) -> None:
        self._settings = settings if callable(settings) else (lambda _tenant: settings)
        self.tenants: dict[str, TenantAlerts] = {}
        # (due in UTC, sequence, due as the rule gave it, tenant, rule, subject): ordered by
        # instants in one zone, which compare without asking zones for their offsets.
        self._heap: list[tuple[datetime, int, datetime, str, str, str]] = []
        self._seq = 0
        self.clock: datetime | None = None

    def tenant(self, name: str) -> TenantAlerts:
        if name not in self.tenants:
            self.tenants[name] = TenantAlerts(Context({}, self._settings(name)))
        return self.tenants[name]

    def next_due(self) -> datetime | None:
        """The next moment a timer fires (stale heap entries included: harmless)."""
        return self._heap[0][0] if self._heap else None

    def apply(self, change: Change) -> list[Transition]:
        """Fold one relayed event in, at its own time (after the timers due before then: a
        condition due at the very moment of an event is judged with that event counted)."""
        at = ts(change.event["occurred_at"])
        out = self.advance(at, through=False)
        now = max(self.clock or at, at)
        state = self.tenant(change.tenant)
        records = state.ctx.kind(change.kind)
        before: Record | None = records.get(change.key)
        updated = apply(before, change)
        if updated is None:
            return out  # already applied: a redelivery
        records[change.key] = updated
        state.ctx.touch(change.kind, change.key, before)
        may = touched(state.ctx, change.kind, change.key, before)
        pairs = may.always | {pair for pair in may.while_alerting if pair in state.open}
        pairs |= {pair for pair in may.unless_alerting if pair not in state.open}
        for rule, key in sorted(pairs):
            out += self._assess(change.tenant, rule, key, now, at)
        return out

    def advance(self, now: datetime, *, through: bool = True) -> list[Transition]:
        """Fire every timer due by `now` (`through=False`: due before `now`), each at its own
        moment."""
        out: list[Transition] = []
        until = now.astimezone(UTC)
        while self._heap and (self._heap[0][0] <= until if through else self._heap[0][0] < until):
            _, _, due, tenant, rule, key = heapq.heappop(self._heap)
            if self.tenants[tenant].due.get((rule, key)) == due:
                out += self._assess(tenant, rule, key, due, due)
        if self.clock is None or now > self.clock:
            self.clock = now
        return out

    def _assess(self, tenant: str, rule: str, key: str, now: datetime,
                cause: datetime) -> list[Transition]:
        """Re-assess one subject at `now`; `cause` is the moment of what prompted it."""
        state = self.tenants[tenant]
        assessment = ASSESS[rule](state.ctx, key, now)
        current = state.open.get((rule, key))
        out: list[Transition] = []
        if assessment.holds(now) and current is None:
            assert assessment.since is not None
            alert = self._alert(tenant, assessment, max(assessment.since, cause), now)
            state.open[rule, key] = alert
            out.append(opened(alert))
        elif not assessment.holds(now) and current is not None:
            del state.open[rule, key]
            out.append(resolved(current, max(cause, current.became_true_at)))
        following = assessment.next_change(now)
        if following is None:
            state.due.pop((rule, key), None)
        elif state.due.get((rule, key)) != following:
            state.due[rule, key] = following
            self._seq += 1
            heapq.heappush(self._heap, (following.astimezone(UTC), self._seq, following,
                                        tenant, rule, key))
        return out

    def _alert(self, tenant: str, a: Assessment, became: datetime, now: datetime) -> Alert:
        ctx = self.tenants[tenant].ctx
        who = ctx.rep_at(a.owner, now)
        team, manager = who["team"], who["manager"]
        if a.rule == "pace" and a.facts.get("scope") == "team":
            team = a.facts["scope_id"]
            managers = [r["history"][-1][2] for r in ctx.kind("rep").values()
                        if r["history"][-1][1] == team]
            manager = max((m for m in managers if m), default=None)
        return Alert(alert_id(tenant, a.rule, a.key, became), tenant, a.rule, KINDS[a.rule],
                     a.key, became, a.evidence, a.severity, a.owner, manager, team, a.facts)

    def open_alerts(self, tenant: str) -> list[Alert]:
        return list(self.tenant(tenant).open.values())


def current(ctx: Context, now: datetime, rules: tuple[str, ...]) -> list[Assessment]:
    """The subjects whose condition holds at `now` (for listings read at request time)."""
    from alerts.rules import subjects

    found = []
    for rule, key in subjects(ctx):
        if rule in rules:
            assessment = ASSESS[rule](ctx, key, now)
            if assessment.holds(now):
                found.append(assessment)
    return found
