"""Which (rule, subject) pairs there are, and which of them a change may alter."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime
from typing import NamedTuple

from alerts.rules.churn_risk import churn_risk
from alerts.rules.context import Context
from alerts.rules.engagement_drop import engagement_drop
from alerts.rules.inactive_deal import inactive_deal
from alerts.rules.lead_sla import lead_sla
from alerts.rules.pace import pace
from alerts.rules.settings import PACE_METRICS, Pair
from alerts.rules.stalled_deal import stalled_deal
from events.vocabulary import ts
from projections.facts import Record

ASSESS = {"stalled_deal": stalled_deal, "inactive_deal": inactive_deal, "lead_sla": lead_sla,
          "churn_risk": churn_risk, "engagement_drop": engagement_drop, "pace": pace}


def subjects(ctx: Context) -> list[tuple[str, str]]:
    """Every (rule, subject key) the tenant has."""
    out = [(rule, key) for key in ctx.kind("deal") for rule in ("stalled_deal", "inactive_deal")]
    out += [("lead_sla", key) for key in ctx.kind("lead")]
    customers = set(ctx.orders_by_customer) | set(ctx.kind("customer"))
    out += [(rule, key) for key in sorted(customers) for rule in ("churn_risk", "engagement_drop")]
    out += [("pace", key) for key in ctx.kind("target")]
    return out





class Touched(NamedTuple):
    """What a change may alter: `always` re-assessed; `while_alerting` only if alerting
    (the change can only postpone the moment the condition holds, or end it: a pair not
    alerting keeps its timer, due no later than the new moment, which re-assesses it when it
    fires); `unless_alerting` only if not (the change can only bring that moment earlier:
    one holding now still holds, with the same end)."""

    always: set[Pair]
    while_alerting: set[Pair]
    unless_alerting: set[Pair]


def touched(ctx: Context, kind: str, key: str, before: Record | None) -> Touched:
    """The (rule, subject) pairs whose answer a change to `kind/key` may change."""
    rec = ctx.kind(kind)[key]
    out: set[Pair] = set()
    later: set[Pair] = set()
    sooner: set[Pair] = set()
    for activity in rec.get("activities", ())[len((before or {}).get("activities", ())):]:
        # an activity raises the actual: falling behind pace moves later, never earlier
        later |= _pace_of(ctx, ("activities",), activity[2], ts(activity[0]))
    if kind == "deal":
        out |= {("stalled_deal", key), ("inactive_deal", key)}
        if rec["status"] == "won" or (before is not None and before["status"] == "won"):
            # Thresholds learn from won deals: a stage's rising threshold moves its deals'
            # stall later, a falling one earlier. Pace counts won deals.
            moved = ctx.moved_thresholds()
            if moved is None:
                out |= {("stalled_deal", d) for deals in ctx.open_deals.values() for d in deals}
            else:
                for stage in moved[0]:  # rose
                    later |= {("stalled_deal", d) for d in ctx.open_deals.get(stage, ())}
                for stage in moved[1]:  # fell
                    sooner |= {("stalled_deal", d) for d in ctx.open_deals.get(stage, ())}
            for owner in {rec["owner"], (before or rec)["owner"]}:
                out |= _pace_of(ctx, ("won_value", "won_deals"), owner,
                                ts(rec.get("closed_at") or (before or rec)["closed_at"]))
        if rec.get("customer"):
            out.add(("churn_risk", rec["customer"]))  # the account owner may change
    elif kind == "lead":
        out.add(("lead_sla", key))
    elif kind == "customer":
        out |= {("engagement_drop", key), ("churn_risk", key)}
    elif kind == "order":
        out |= {("churn_risk", rec["customer"]), ("engagement_drop", rec["customer"])}
    elif kind == "target":
        out.add(("pace", key))
    elif kind == "pipeline":
        out |= {("stalled_deal", d) for deals in ctx.open_deals.values() for d in deals}
    elif kind == "rep":
        out |= {("pace", k) for k, t in ctx.kind("target").items()
                if t["scope"] == "team" and t["metric"] in PACE_METRICS}
    return Touched(out, later - out, sooner - out)


def _pace_of(ctx: Context, metrics: tuple[str, ...], rep: str | None,
             at: datetime) -> set[tuple[str, str]]:
    """Pace targets that count what `rep` did at `at`."""
    team = ctx.rep_at(rep, at)["team"]
    index, moment = ctx.pace_targets(), at.astimezone(UTC)
    out = set()
    for metric in metrics:
        for scope, scope_id in (("rep", rep), ("team", team)):
            for target in index.get((metric, scope, scope_id), ()):
                if target.start <= moment < target.end:
                    out.add(("pace", target.key))
    return out


def rejudged(ctx: Context, kind: str, key: str, before: Record | None,
             since: datetime) -> set[Pair]:
    """The pairs whose answer a late change to `kind/key` (one that occurred at `since`,
    before events already folded in) may have changed at any moment from `since` on:
    `touched`, whether alerting or not, and when thresholds move, every deal open then."""
    may = touched(ctx, kind, key, before)
    pairs = may.always | may.while_alerting | may.unless_alerting
    rec = ctx.kind(kind)[key]
    won = kind == "deal" and (rec["status"] == "won" or (before or {}).get("status") == "won")
    if (won and ctx.learned()) or kind == "pipeline":
        pairs |= {("stalled_deal", d) for d, deal in ctx.kind("deal").items()
                  if deal["status"] == "open" or ts(deal["closed_at"]) >= since}
    return pairs


def moments(ctx: Context, rule: str, key: str, after: datetime,
            until: datetime) -> list[datetime]:
    """When the events occurred, in (after, until], that the pair's answer reads (its
    subject's own and, for some rules, others'), ascending: between them the answer changes
    only at `next_change`, so judging the past again looks at these and those."""
    low, high = after.astimezone(UTC), until.astimezone(UTC)

    def within(times: list[datetime]) -> list[datetime]:  # ascending
        return times[bisect_right(times, low):bisect_right(times, high)]

    def own(kind: str, activities: bool) -> list[datetime]:
        rec = ctx.kind(kind).get(key, {})
        entries = [*rec.get("log", ()), *(rec.get("activities", ()) if activities else ())]
        return [m for m in (ts(e[0]) for e in entries) if low < m <= high]

    if rule == "stalled_deal":
        pipeline = next(iter(ctx.kind("pipeline").values()), {})
        closings, deals = ctx.closings(), ctx.kind("deal")
        closed = ctx._closed_deals[bisect_right(closings, low):bisect_right(closings, high)]  # noqa: SLF001
        # as each was written: a stall a threshold's fall starts then carries that moment
        out = own("deal", False) + [ts(deals[d]["closed_at"]) for d in closed] + [
            m for m in (ts(e[0]) for e in pipeline.get("log", ())) if low < m <= high]
    elif rule == "inactive_deal":
        out = own("deal", True)
    elif rule == "lead_sla":
        out = own("lead", True)
    elif rule == "churn_risk":
        out = [m for m in ctx.booked(key) if low < m <= high]
    elif rule == "engagement_drop":
        out = [m for m in ctx.customer_times(key) if low < m <= high]
    elif rule == "pace" and (target := ctx.kind("target").get(key)) is not None:
        reps = ({target.get("scope_id") or ""} if target["scope"] == "rep"
                else {rep for rep, _, _ in ctx.members(target.get("scope_id") or "")})
        out = own("target", False)
        for rep in reps:
            out += within(ctx.activity_times.get(rep, []))
            wins = ctx.won_by_rep().get(rep)
            out += within(wins.closed) if wins else []
            out += [m for m in (ts(h[0]) for h in ctx.kind("rep").get(rep, {}).get("history", ()))
                    if low < m <= high]
    else:
        return []
    return sorted(set(out))
