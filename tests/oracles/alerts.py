"""Independent computation (pandas over raw events) of when alert conditions became true.

Imports no service code. Covers every rule of docs/ALERTS.md: for each subject, the
moments its condition started holding (a run of time in which it holds without a break is
one alert), up to the last event's time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from typing import Any

import pandas as pd


def _frame(events: list[dict[str, Any]], tz: str) -> pd.DataFrame:
    rows = [{"type": e["type"], "at": e["occurred_at"], **e["data"]} for e in events]
    df = pd.DataFrame(rows)
    df["at"] = [pd.Timestamp(a).tz_localize(tz) if pd.Timestamp(a).tzinfo is None
                else pd.Timestamp(a) for a in df["at"]]
    df["seq"] = range(len(df))
    return df


def lead_sla_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai",
                    hours: float = 24) -> set[tuple[str, datetime]]:
    df = _frame(events, tz)
    end = df["at"].max()
    sla = pd.Timedelta(hours=hours)
    relevant = df[df["lead_id"].notna() & df["type"].isin([
        "lead.created", "lead.assigned", "activity.logged", "lead.qualified",
        "lead.disqualified", "lead.converted"])][["seq", "lead_id", "type", "at"]]
    out = set()
    for lead, rows in relevant.sort_values("seq").groupby("lead_id"):
        clock = None  # when the current SLA clock started (None: nothing owed)
        for row in rows.itertuples():
            if clock is not None and row.at > clock + sla:
                out.add((lead, (clock + sla).to_pydatetime(warn=False)))
            if row.type in ("lead.created", "lead.assigned"):
                clock = row.at
            else:
                clock = None  # contacted or decided
        if clock is not None and clock + sla <= end:
            out.add((lead, (clock + sla).to_pydatetime(warn=False)))
    return out


def churn_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai", factor: float = 2,
                 min_orders: int = 3) -> set[tuple[str, datetime]]:
    df = _frame(events, tz)
    end = df["at"].max()
    orders = df[df["type"] == "order.booked"].sort_values("seq")
    out = set()
    for customer, rows in orders.groupby("customer_id"):
        times = list(rows["at"])
        for k in range(min_orders, len(times) + 1):
            gaps = pd.Series(times[:k]).diff().dropna().dt.total_seconds() / 86400
            due = times[k - 1] + pd.Timedelta(days=factor * gaps.median())
            following = times[k] if k < len(times) else None
            if due <= end and (following is None or following > due):
                out.add((customer, due.to_pydatetime(warn=False)))
    return out


# --------------------------------------------------------------------------- shared


def _runs(intervals: list[tuple[pd.Timestamp, pd.Timestamp | None]],
          end: pd.Timestamp) -> list[pd.Timestamp]:
    """The starts (by `end`) of the maximal runs of a union of half-open intervals
    [from, to) (to None: unbounded): a condition that holds without a break is one alert."""
    starts: list[pd.Timestamp] = []
    reach: pd.Timestamp | None = None  # where the current run ends (None: never)
    for begin, stop in sorted((i for i in intervals if i[1] is None or i[0] < i[1]),
                              key=lambda i: i[0]):
        if starts and (reach is None or begin <= reach):
            reach = None if reach is None or stop is None else max(reach, stop)
            continue
        if begin > end:
            break
        starts.append(begin)
        reach = stop
    return starts


def _of(df: pd.DataFrame, *types: str) -> pd.DataFrame:
    return df[df["type"].isin(types)].sort_values("seq")


DEFAULT_STAGES = ("prospecting", "qualification", "proposal", "negotiation")


def _visits(df: pd.DataFrame) -> pd.DataFrame:
    """Every stay of a deal in a stage: deal, stage, entered, left (NaT: still there), and
    how the deal ended the stay's pipeline life (won/lost at `left`, or a move)."""
    rows = []
    current: dict[str, list[Any]] = {}  # deal -> [stage, entered]
    for row in _of(df, "deal.created", "deal.stage_changed", "deal.won",
                   "deal.lost").itertuples():
        deal = row.deal_id
        if row.type == "deal.created":
            current[deal] = [row.stage, row.at]
        elif deal not in current:
            continue  # closed already
        elif row.type == "deal.stage_changed":
            if row.stage != current[deal][0]:
                rows.append((deal, *current[deal], row.at, "moved"))
                current[deal] = [row.stage, row.at]
        else:
            rows.append((deal, *current[deal], row.at, row.type.split(".")[1]))
            del current[deal]
    rows += [(deal, stage, entered, pd.NaT, "open") for deal, (stage, entered) in current.items()]
    return pd.DataFrame(rows, columns=["deal", "stage", "entered", "left", "how"])


# --------------------------------------------------------------------------- deals


def stalled_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai",
                   default_days: float = 21, q: float = 0.8,
                   min_samples: int = 10) -> set[tuple[str, datetime]]:
    """Open deal in its stage for at least the stage's threshold; the threshold is a step
    function of time, recomputed at every win from the won deals' total dwell per stage.
    (No `pipeline.configured` in simulated history: stages and fallback are the defaults.)"""
    df = _frame(events, tz)
    end = df["at"].max()
    visits = _visits(df)
    won = visits[visits["deal"].isin(visits.loc[visits["how"] == "won", "deal"])].copy()
    won["days"] = (won["left"] - won["entered"]).dt.total_seconds() / 86400
    dwell = won.groupby(["deal", "stage"])["days"].sum().reset_index()
    won_at = visits[visits["how"] == "won"].set_index("deal")["left"]
    dwell["won_at"] = dwell["deal"].map(won_at)
    # thresholds[k] holds from moments[k] until moments[k + 1]
    moments: list[pd.Timestamp | None] = [None]
    thresholds = [dict.fromkeys(DEFAULT_STAGES, float(default_days))]
    for at in sorted(won_at.unique()):
        known = dwell[dwell["won_at"] <= at]
        step = {}
        for stage in DEFAULT_STAGES:
            samples = known.loc[known["stage"] == stage, "days"]
            step[stage] = (float(samples.quantile(q)) if len(samples) >= min_samples
                           else float(default_days))
        moments.append(at)
        thresholds.append(step)
    out = set()
    for deal, stays in visits.groupby("deal"):
        intervals = []
        for stay in stays.itertuples():
            left = None if pd.isna(stay.left) else stay.left
            for k, step in enumerate(thresholds):
                seg_from = moments[k]
                seg_to = moments[k + 1] if k + 1 < len(moments) else None
                if (seg_to is not None and seg_to <= stay.entered) or (
                        left is not None and seg_from is not None and seg_from >= left):
                    continue  # the threshold then does not matter to this stay
                due = stay.entered + pd.Timedelta(days=step.get(stay.stage, default_days))
                begin = max(due, seg_from) if seg_from is not None else due
                stops = [s for s in (seg_to, left) if s is not None]
                intervals.append((begin, min(stops) if stops else None))
        out |= {(deal, s.to_pydatetime(warn=False)) for s in _runs(intervals, end)}
    return out


def inactive_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai",
                    days: float = 14) -> set[tuple[str, datetime]]:
    """Open deal with no activity logged on it for `days` (since creation when none), unless
    its most recently scheduled next step is due later: then from that due time."""
    df = _frame(events, tz)
    end = df["at"].max()
    idle = pd.Timedelta(days=days)
    deals = df[df["deal_id"].notna() & df["type"].str.match(r"(deal|activity|quote)\.")][
        ["seq", "deal_id", "type", "at", "due_at"]]
    out = set()
    for deal, rows in deals.sort_values("seq").groupby("deal_id"):
        intervals = []
        last = next_due = None
        moments = list(rows["at"])
        for i, row in enumerate(rows.itertuples()):
            following = moments[i + 1] if i + 1 < len(moments) else None
            if row.type in ("deal.won", "deal.lost"):
                break
            if row.type in ("deal.created", "activity.logged"):
                last = row.at
            elif row.type == "activity.scheduled":
                next_due = pd.Timestamp(row.due_at)
            if last is None:
                continue
            due = last + idle
            if next_due is not None and next_due > due:
                due = next_due
            intervals.append((max(due, row.at), following))
        out |= {(deal, s.to_pydatetime(warn=False)) for s in _runs(intervals, end)}
    return out


# --------------------------------------------------------------------------- customers


def engagement_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai",
                      recent_days: float = 30, prior_days: float = 90,
                      share: float = 0.5) -> set[tuple[str, datetime]]:
    """Customer's interactions (activities logged on the customer itself) per day in
    (t - 30 d, t] below half of those per day in (t - 120 d, t - 30 d], the latter > 0.
    Both counts are step functions of t that change only at a, a + 30 d, a + 120 d."""
    df = _frame(events, tz)
    end = df["at"].max()
    logged = df[(df["type"] == "activity.logged") & df["customer_id"].notna()
                & df["deal_id"].isna() & df["lead_id"].isna()]
    recent, prior = pd.Timedelta(days=recent_days), pd.Timedelta(days=recent_days + prior_days)
    out = set()
    for customer, rows in logged.groupby("customer_id"):
        times = sorted(rows["at"])
        edges = sorted(set(times) | {a + recent for a in times} | {a + prior for a in times})
        intervals = []
        for k, t in enumerate(edges):
            n_recent = bisect_right(times, t) - bisect_right(times, t - recent)
            n_prior = bisect_right(times, t - recent) - bisect_right(times, t - prior)
            if n_prior > 0 and n_recent / recent_days < share * n_prior / prior_days:
                intervals.append((t, edges[k + 1] if k + 1 < len(edges) else None))
        out |= {(customer, s.to_pydatetime(warn=False)) for s in _runs(intervals, end)}
    return out


# --------------------------------------------------------------------------- pace


def _period(period: str, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    if "-Q" in period:
        start = pd.Timestamp(f"{period[:4]}-{3 * int(period[6]) - 2:02d}-01", tz=tz)
        return start, start + pd.DateOffset(months=3)
    if len(period) == 7:
        start = pd.Timestamp(f"{period}-01", tz=tz)
        return start, start + pd.DateOffset(months=1)
    start = pd.Timestamp(f"{period}-01-01", tz=tz)
    return start, start + pd.DateOffset(years=1)


def _team_at(df: pd.DataFrame) -> Any:
    """team_of(rep, at): the team of the rep's entry in force at `at` (its first before)."""
    history: dict[str, list[tuple[pd.Timestamp, str]]] = {}
    for row in _of(df, "rep.joined", "rep.moved").itertuples():
        if row.type == "rep.joined":
            history[row.rep_id] = [(row.at, row.team_id)]
        elif row.rep_id in history:
            history[row.rep_id].append((row.at, row.team_id))

    def team_of(rep: str, at: pd.Timestamp) -> str | None:
        entries = history.get(rep)
        if not entries:
            return None
        chosen = entries[0][1]
        for moment, team in entries:
            if moment <= at:
                chosen = team
        return chosen
    return team_of


def pace_starts(events: list[dict[str, Any]], tz: str = "Asia/Shanghai", floor: float = 0.8,
                judge_from: float = 1 / 3) -> set[tuple[str, datetime]]:
    """Rep or team target (won_value, won_deals, activities) projected below `floor` of its
    value at the run-rate: actual(t) * length / (t - start) < floor * value, judged from a
    third of the period until its end; subjects keyed scope/id/period/metric."""
    df = _frame(events, tz)
    end = df["at"].max()
    team_of = _team_at(df)
    logged = _of(df, "activity.logged")[["at", "rep_id"]].copy()
    logged["team"] = [team_of(r, a) for r, a in zip(logged["rep_id"], logged["at"], strict=True)]
    won = _of(df, "deal.won").drop_duplicates("deal_id").set_index("deal_id")["at"]
    deal_events = _of(df, "deal.created", "deal.owner_changed", "deal.amount_changed",
                      "deal.won")
    deal_events = deal_events[deal_events["deal_id"].isin(won.index)]
    won_items = list(won.items())
    owners: dict[str, list[tuple[pd.Timestamp, str]]] = {}
    amounts: dict[str, list[tuple[pd.Timestamp, float]]] = {}
    for e in deal_events.itertuples():
        if isinstance(e.owner_id, str):
            owners.setdefault(e.deal_id, []).append((e.at, e.owner_id))
        if isinstance(e.amount, str):
            amounts.setdefault(e.deal_id, []).append((e.at, float(e.amount)))

    def as_of(timeline: list[tuple[pd.Timestamp, Any]], t: pd.Timestamp) -> Any:
        return [v for at, v in timeline if at <= t][-1]

    def won_actual(t: pd.Timestamp, start: pd.Timestamp, scope: str, who: str,
                   metric: str) -> float:
        """Won deals closed in [start, t] by their owner as of t (a team: the owner's team at
        the close), their amount as of t."""
        total = 0.0
        for deal, closed in won_items:
            if not start <= closed <= t:
                continue
            owner = as_of(owners[deal], t)
            if (owner == who) if scope == "rep" else (team_of(owner, closed) == who):
                total += as_of(amounts[deal], t) if metric == "won_value" else 1
        return total

    out = set()
    for row in _of(df, "target.set").itertuples():
        if row.scope not in ("rep", "team") or row.metric not in (
                "won_value", "won_deals", "activities") or float(row.value) <= 0:
            continue
        key = f"{row.scope}/{row.scope_id}/{row.period}/{row.metric}"
        start, stop = _period(row.period, tz)
        length = (stop - start).total_seconds()
        value = float(row.value)
        if row.metric == "activities":
            mine = sorted(logged.loc[logged["rep_id" if row.scope == "rep" else "team"]
                                     == row.scope_id, "at"])
            changes = sorted({a for a in mine if row.at < a < stop})
        else:
            changes = sorted(set(deal_events.loc[(deal_events["at"] > row.at)
                                                 & (deal_events["at"] < stop), "at"]))
        moments = [row.at, *[c for c in changes if c <= end]]
        intervals = []
        for k, t in enumerate(moments):
            if row.metric == "activities":
                actual = float(bisect_right(mine, t) - bisect_left(mine, start))
            else:
                actual = won_actual(t, start, row.scope, row.scope_id, row.metric)
            since = max(start + pd.Timedelta(seconds=length * judge_from),
                        start + pd.Timedelta(seconds=actual / (floor * value) * length), t)
            following = moments[k + 1] if k + 1 < len(moments) else stop
            intervals.append((since, min(following, stop)))
        out |= {(key, s.to_pydatetime(warn=False)) for s in _runs(intervals, end)}
    return out
