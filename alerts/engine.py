"""The alert engine: events and the passing of time in, alert transitions out. Pure.

It folds each tenant's events into fact records (`projections.facts.apply`),
re-assesses the rules a change may affect (`rules.touched`: some only while they alert,
some only while they do not), and keeps a heap of the moments an answer
changes with no new event (a threshold crossed, a period over). Time is given, never read:
`apply(change)` first advances to the event's time, and the caller advances to the wall
clock when it has caught up. So a replay of history fires every alert at its historical
moment, and the same input always gives the same transitions (with the same ids).

Each tenant keeps its own clock and timers: one tenant's events (or a front end of its whose
clock runs ahead) never make another's events late nor fire its timers early, so the
transitions of a tenant depend on its events alone (and on the wall clock the caller
advances every tenant to). That is what lets alerters share the tenants (alerts/tenancy.py)
and tell what one alerter tells.

An event that occurred before the engine's clock (it arrived late, or timers ran ahead of
it) judges the pairs it may touch again from its moment to the clock: each rule is stepped
through the moments its answer can change (`rules.moments`, `next_change`), reading the
records as they stood then, and the alerts that gives are compared with those told:
one that never held is retracted, one that held only in the past is told as past
(opened and resolved, `past`), one that holds now opens as usual, and one whose end moved
is resolved again or reopened. So the alerts any arrival order ends with are those of the
events arriving in business-time order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from alerts.lifecycle import Alert, Transition, alert_id, revised
from alerts.rules import (
    ASSESS,
    KINDS,
    Assessment,
    Context,
    Pair,
    RuleSettings,
    moments,
    rejudged,
    touched,
    ts,
)
from projections.facts import Change, Record, apply

HELD = "held"  # the ledger's subjects of events waiting for theirs: no business fact


# A timer: (due in UTC, sequence, due as the rule gave it, rule, subject), ordered by instants
# in one zone, which compare without asking zones for their offsets.
Timer = tuple[datetime, int, datetime, str, str]


@dataclass
class TenantAlerts:
    ctx: Context
    open: dict[Pair, Alert] = field(default_factory=dict)
    due: dict[Pair, datetime] = field(default_factory=dict)
    # Every alert told per pair (retracted ones left out), in the order they became true:
    # what a late event's judgement of the past is compared with.
    alerts: dict[Pair, list[Alert]] = field(default_factory=dict)
    clock: datetime | None = None  # the latest moment this tenant's alerts were judged at
    heap: list[Timer] = field(default_factory=list)


class AlertEngine:
    def __init__(self, settings: Callable[[str], RuleSettings] | RuleSettings) -> None:
        self._settings = settings if callable(settings) else (lambda _tenant: settings)
        self.tenants: dict[str, TenantAlerts] = {}
        self._seq = 0
        self.clock: datetime | None = None  # the latest of the tenants' clocks
        self.ticked: datetime | None = None  # the latest moment `advance` was asked for
        self._issued: dict[str, int] = {}  # transitions told per alert id

    def tenant(self, name: str) -> TenantAlerts:
        if name not in self.tenants:  # it starts where the caller's clock is
            self.tenants[name] = TenantAlerts(Context({}, self._settings(name)),
                                              clock=self.ticked)
        return self.tenants[name]

    def next_due(self) -> datetime | None:
        """The next moment a timer fires (stale heap entries included: harmless)."""
        return min((state.heap[0][0] for state in self.tenants.values() if state.heap),
                   default=None)

    def apply(self, change: Change) -> list[Transition]:
        """Fold one relayed event in, at its own time (after the timers due before then: a
        condition due at the very moment of an event is judged with that event counted).
        One that occurred before the clock judges the past again (the module's text)."""
        if change.kind == HELD:
            return []
        at = ts(change.event["occurred_at"])
        state = self.tenant(change.tenant)
        out = self._advance(change.tenant, at, through=False)
        late = state.clock is not None and at < state.clock
        now = max(state.clock or at, at)
        ctx = state.ctx
        records = ctx.kind(change.kind)
        before: Record | None = records.get(change.key)
        updated = apply(before, change)
        if updated is None:
            return out  # already applied: a redelivery
        records[change.key] = updated
        horizon = ctx.horizon
        # Records hold an event after this one: the past must be read as it stood.
        earlier = horizon is not None and at < horizon
        if not earlier:
            ctx.horizon = at
        ctx.touch(change.kind, change.key, before)
        if earlier:
            pairs = rejudged(ctx, change.kind, change.key, before, at)
        else:
            may = touched(ctx, change.kind, change.key, before)
            pairs = may.always | {pair for pair in may.while_alerting if pair in state.open}
            pairs |= {pair for pair in may.unless_alerting if pair not in state.open}
            if late:  # timers ran past it: so may an alert they told
                pairs |= {pair for pair in may.while_alerting | may.unless_alerting
                          if self._told_after(state, pair, at)}
        for rule, key in sorted(pairs):
            if late:
                out += self._rejudge(change.tenant, rule, key, at, earlier)
            else:
                out += self._assess(change.tenant, rule, key, now, at)
        return out

    @staticmethod
    def _told_after(state: TenantAlerts, pair: Pair, at: datetime) -> bool:
        told = state.alerts.get(pair)
        if not told:
            return False
        last = told[-1]
        return last.became_true_at > at or (last.resolved_at is not None
                                            and last.resolved_at > at)

    def advance(self, now: datetime, *, through: bool = True) -> list[Transition]:
        """Fire every tenant's timers due by `now` (`through=False`: due before `now`), or by
        its own clock if later (its events ran ahead of `now`: their time rules), each at its
        own moment."""
        out: list[Transition] = []
        for tenant, state in self.tenants.items():
            until = now if state.clock is None else max(now, state.clock)
            out += self._advance(tenant, until, through=through)
        if self.ticked is None or now > self.ticked:
            self.ticked = now
        if self.clock is None or now > self.clock:
            self.clock = now
        return out

    def _advance(self, tenant: str, now: datetime, *, through: bool) -> list[Transition]:
        """`advance` for one tenant's timers and clock."""
        out: list[Transition] = []
        state = self.tenants[tenant]
        heap, until = state.heap, now.astimezone(UTC)
        while heap and (heap[0][0] <= until if through else heap[0][0] < until):
            _, _, due, rule, key = heapq.heappop(heap)
            if state.due.get((rule, key)) == due:
                out += self._assess(tenant, rule, key, due, due)
        if state.clock is None or now > state.clock:
            state.clock = now
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
            state.alerts.setdefault((rule, key), []).append(alert)
            out.append(self._tell("opened", alert, alert.became_true_at))
        elif not assessment.holds(now) and current is not None:
            del state.open[rule, key]
            at = max(cause, current.became_true_at)
            closed = replace(current, resolved_at=at)
            state.alerts[rule, key][-1] = closed
            out.append(self._tell("resolved", closed, at))
        self._schedule(tenant, rule, key, assessment.next_change(now))
        return out

    def _tell(self, kind: str, alert: Alert, at: datetime, *,
              known_at: datetime | None = None, past: bool = False) -> Transition:
        issued = self._issued.get(alert.id, 0)
        self._issued[alert.id] = issued + 1
        return revised(kind, alert, at, issued, known_at=known_at, past=past)

    def _schedule(self, tenant: str, rule: str, key: str, following: datetime | None) -> None:
        state = self.tenants[tenant]
        if following is None:
            state.due.pop((rule, key), None)
        elif state.due.get((rule, key)) != following:
            state.due[rule, key] = following
            self._seq += 1
            heapq.heappush(state.heap, (following.astimezone(UTC), self._seq, following,
                                        rule, key))

    def _rejudge(self, tenant: str, rule: str, key: str, since: datetime,
                 earlier: bool) -> list[Transition]:
        """Judge one pair again from `since` (a late event's moment) to the clock, and tell
        how that differs from what was told. `earlier`: the records hold events after
        `since` (without, only the passing of time can change the answer after it)."""
        state = self.tenants[tenant]
        clock = state.clock
        assert clock is not None
        ctx, pair = state.ctx, (rule, key)
        told = state.alerts.get(pair, [])
        kept = [a for a in told if a.became_true_at < since]  # they became true as told
        carry = kept.pop() if kept and (kept[-1].resolved_at is None
                                        or kept[-1].resolved_at >= since) else None
        points = moments(ctx, rule, key, since, clock) if earlier else []
        # The runs of time the condition holds from `since` on: [became, resolved or None,
        # the assessment it became true with (None: `carry`, true before), judged at].
        runs: list[tuple[datetime, datetime | None, Assessment | None, datetime]] = []
        begun: tuple[datetime, Assessment | None, datetime] | None = (
            (carry.became_true_at, None, since) if carry else None)
        moment, index = since, 0
        while True:
            assessment = ASSESS[rule](ctx, key, moment)
            holds = assessment.holds(moment)
            if holds and begun is None:
                assert assessment.since is not None
                begun = (max(assessment.since, moment), assessment, moment)
            elif not holds and begun is not None:
                runs.append((begun[0], max(moment, begun[0]), begun[1], begun[2]))
                begun = None
            following = assessment.next_change(moment)
            while index < len(points) and points[index] <= moment:
                index += 1
            step = points[index] if index < len(points) else None
            if step is None or (following is not None and following < step):
                if following is None or following > clock:
                    break
                step = following
            moment = step
        if begun is not None:
            runs.append((begun[0], None, begun[1], begun[2]))
        self._schedule(tenant, rule, key, following)
        return self._retell(tenant, pair, kept, carry, told[len(kept) + (carry is not None):],
                            runs)

    def _retell(self, tenant: str, pair: Pair, kept: list[Alert], carry: Alert | None,
                stale: list[Alert], runs: list[tuple[datetime, datetime | None,
                                                     Assessment | None, datetime]]
                ) -> list[Transition]:
        """The transitions from the alerts told (`carry`, `stale`) to those judged (`runs`)."""
        state = self.tenants[tenant]
        clock = state.clock
        assert clock is not None
        rule, key = pair
        was = {a.id: a for a in ([carry] if carry else []) + stale}
        judged: list[tuple[Alert, datetime | None]] = []  # each run's alert and its end
        for became, ended, assessment, moment in runs:
            if assessment is None:
                assert carry is not None
                judged.append((carry, ended))
            else:
                found = was.get(alert_id(tenant, rule, key, became))
                judged.append((found or self._alert(tenant, assessment, became, moment), ended))
        out = []
        standing = {alert.id for alert, _ in judged}
        for gone in [a for a in was.values() if a.id not in standing]:
            out.append(self._tell("retracted", replace(gone, retracted_at=clock), clock,
                                  known_at=clock))
        alerts = kept
        for alert, ended in judged:
            previous = was.get(alert.id)
            final = replace(alert, resolved_at=ended)
            alerts.append(final)
            if previous is None:  # a run not told before
                past = ended is not None
                out.append(self._tell("opened", replace(alert, resolved_at=None),
                                      alert.became_true_at, known_at=clock, past=past))
                if ended is not None:
                    out.append(self._tell("resolved", final, ended, known_at=clock, past=True))
            elif previous.resolved_at != ended:
                if ended is None:
                    out.append(self._tell("reopened", final, clock, known_at=clock))
                else:
                    out.append(self._tell("resolved", final, ended, known_at=clock))
        state.alerts[pair] = alerts
        if alerts and alerts[-1].resolved_at is None:
            state.open[pair] = alerts[-1]
        else:
            state.open.pop(pair, None)
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
