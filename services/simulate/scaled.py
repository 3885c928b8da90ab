"""N deals' worth of read models, written straight into Redis for the query bench.

Going through the API and Kafka would take hours at 100k deals here, so the history
is made and folded in-process: a simulated year of one organisation (the template,
at most `TEMPLATE_DEALS` deals, checked against the contract by `parse_event`), its
ids made those of copy 0 (`D-00042` becomes `D-0.00042`, teams and reps too), is
folded by `FactStore.apply`, the reducer and write path of the projector and the
rebuild. Copies 1, 2, ... are copy 0's records with `-0.` renamed `-k.` in every id:
the reducer never looks at id values, so that is exactly what folding the renamed
events would give (tests/unit pins this), at a fraction of the time.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from events.parsing import parse_event
from events.rules import subject_of
from projections.facts import Change, Record
from services.readmodels.codec import encode_json
from services.readmodels.store import FactStore
from services.simulate.world import simulate

TEMPLATE_DEALS = 5_000
# Deals the simulator makes in a year per lead a day (measured: 40 leads/day, 4,214 deals).
DEALS_PER_LEAD_PER_DAY_YEAR = 105.0
START = datetime(2017, 1, 1, tzinfo=UTC)
# An id is a capital letter, a dash and digits (`D-00042`, `R-001`, `T-1`), never inside
# a word: timestamps, uuids, periods (`2017-Q1`) and product names do not match.
_ID = re.compile(rb"(?<![A-Za-z0-9])([A-Z])-(?=\d)")
_COPY_0 = re.compile(rb"(?<![A-Za-z0-9])([A-Z])-0\.(?=\d)")


@dataclass(frozen=True)
class Template:
    changes: list[Change]
    deals: int


@dataclass(frozen=True)
class Built:
    deals: int
    events: int  # the events all copies stand for
    template_seconds: float  # simulating and checking the template
    fold_events: int  # copy 0, through FactStore.apply
    fold_seconds: float
    copy_seconds: float  # writing the renamed records of the other copies

    @property
    def fold_events_per_s(self) -> float:
        return self.fold_events / self.fold_seconds if self.fold_seconds else 0.0


def plan(deals: int) -> tuple[int, int]:
    """(copies, deals per copy) whose product is about `deals`."""
    if deals < 1:
        raise ValueError("deals must be at least 1")
    copies = math.ceil(deals / TEMPLATE_DEALS)
    return copies, math.ceil(deals / copies)


def template(deals: int, seed: int = 7, tenant: str = "default") -> Template:
    """A simulated year with about `deals` deals, as the relay would publish it."""
    leads_per_day = max(0.5, deals / DEALS_PER_LEAD_PER_DAY_YEAR)
    raw = simulate(seed, START, START + timedelta(days=365), teams=4, reps_per_team=8,
                   leads_per_day=leads_per_day)
    versions: dict[tuple[str, str], int] = defaultdict(int)
    changes = []
    for position, event in enumerate(raw, 1):
        parsed = parse_event(event, tenant=tenant)
        subject = subject_of(parsed)
        versions[subject.kind, subject.key] += 1
        changes.append(Change(position, tenant, subject.kind, subject.key,
                              versions[subject.kind, subject.key], parsed.canonical()))
    return Template(changes, sum(1 for c in changes if c.event["type"] == "deal.created"))


def renamed(changes: list[Change], copy: int) -> list[Change]:
    """The same changes with every id made distinct to copy `copy`."""
    rows = [(c.kind, c.key, c.version, c.event) for c in changes]
    text = _ID.sub(rb"\1-" + f"{copy}.".encode(), orjson.dumps(rows))
    offset = copy * len(changes)
    return [Change(offset + c.position, c.tenant, kind, key, version, event)
            for c, (kind, key, version, event) in zip(changes, orjson.loads(text), strict=True)]


def copied(records: dict[str, dict[str, Record]], copy: int) -> dict[str, dict[bytes, bytes]]:
    """Copy 0's records as copy `copy`'s, ready for HSET: every `X-0.` id made `X-copy.`."""
    new = rb"\1-" + f"{copy}.".encode()
    return {kind: {_COPY_0.sub(new, key.encode()):
                   encode_json(_COPY_0.sub(new, orjson.dumps(record)), kind)
                   for key, record in by_key.items()}
            for kind, by_key in records.items()}


async def build(store: FactStore, deals: int, *, seed: int = 7, tenant: str = "default",
                on_progress: Callable[[int, int], None] | None = None) -> Built:
    """Clear `store`'s prefix, fold about `deals` deals into it and mark it built."""
    copies, per_copy = plan(deals)
    started = time.perf_counter()
    base = template(per_copy, seed, tenant)
    folding = time.perf_counter()
    await store.clear()
    first = renamed(base.changes, 0)
    result = await store.apply(first)
    if result.rejected:
        raise ValueError(f"the reducer refused {len(result.rejected)} simulated events: "
                         f"{result.rejected[0][1]}")
    if on_progress:
        on_progress(1, copies)
    copying = time.perf_counter()
    records = await store.load(tenant)
    for copy in range(1, copies):
        write = store.redis.pipeline(transaction=False)
        for kind, fields in copied(records, copy).items():
            if fields:  # the hash layout of services/readmodels/store.py
                write.hset(f"{store.prefix}:{tenant}:{kind}", mapping=fields)  # type: ignore[arg-type]
        write.incr(f"{store.prefix}:{tenant}:rev")
        write.incrby(f"{store.prefix}:{tenant}:applied", result.applied)
        await write.execute()
        if on_progress:
            on_progress(copy + 1, copies)
    await store.mark_built()
    done = time.perf_counter()
    return Built(base.deals * copies, len(first) * copies, folding - started, len(first),
                 copying - folding, done - copying)
