"""The engine's state saved and restored mid-stream (alerts/checkpoint.py), and the tenants
shared between alerters (alerts/tenancy.py): the transitions told are those of one engine
that saw everything without stopping, ids, moments, states and numbering alike.

Two tenants (one in a zone with summer time, so zone-aware moments must survive), some
events arriving days late (late events judge the past again, the engine's subtlest state),
checkpoints taken at several points, each through JSON bytes as the alerter stores it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from alerts.checkpoint import STATE_VERSION, restore, state_of
from alerts.engine import AlertEngine
from alerts.lifecycle import Transition
from alerts.rules import RuleSettings, ts
from alerts.tenancy import TenantShare, owner_of
from projections.facts import Change
from tests.history import changes, simulated

ZONES = {"acme": "Asia/Shanghai", "stark": "Europe/Berlin"}


def settings(tenant: str) -> RuleSettings:
    return RuleSettings(tz=ZONES[tenant])


@pytest.fixture(scope="module")
def arrivals() -> list[Change]:
    """Both tenants' histories interleaved by business time; one event in nine (not a
    subject's first) arrives 40 events late, as a sync from a phone would."""
    events = simulated(days=150)
    streams = {tenant: changes(events, tenant, tz) for tenant, tz in ZONES.items()}
    merged = sorted((ts(c.event["occurred_at"]), i, c) for tenant, stream in streams.items()
                    for i, c in enumerate(stream))
    keyed = [(index + (40 if change.version > 1 and index % 9 == 0 else 0), index, change)
             for index, (_, _, change) in enumerate(merged)]
    return [change._replace(position=position) for position, (_, _, change) in
            enumerate(sorted(keyed), 1)]


def told(transitions: list[Transition]) -> list[Any]:
    return [(t.id, t.kind, t.at.isoformat(), t.known_at, t.past, t.alert.as_json())
            for t in transitions]


def run(engine: AlertEngine, stream: list[Change]) -> list[Transition]:
    out: list[Transition] = []
    for change in stream:
        out += engine.apply(change)
    return out


def reloaded(engine: AlertEngine) -> AlertEngine:
    fresh = AlertEngine(settings)
    restore(fresh, orjson.loads(orjson.dumps(state_of(engine))))
    return fresh


def test_a_restored_engine_tells_what_one_that_never_stopped_tells(
        arrivals: list[Change]) -> None:
    end = ts(arrivals[-1].event["occurred_at"]) + timedelta(days=60)
    whole = AlertEngine(settings)
    expected = run(whole, arrivals) + whole.advance(end)
    assert {t.kind for t in expected} >= {"opened", "resolved", "retracted"}

    engine, got = AlertEngine(settings), []
    cuts = [0, len(arrivals) // 5, len(arrivals) // 2, len(arrivals) * 4 // 5, len(arrivals)]
    for start, stop in zip(cuts, cuts[1:], strict=False):
        got += run(engine, arrivals[start:stop])
        engine = reloaded(engine)
    got += engine.advance(end)
    assert told(got) == told(expected)
    assert state_of(engine) == state_of(whole)


def test_timers_due_after_a_checkpoint_fire_at_their_moments(arrivals: list[Change]) -> None:
    half = arrivals[: len(arrivals) // 2]
    later = ts(half[-1].event["occurred_at"]) + timedelta(days=45)
    whole = AlertEngine(settings)
    run(whole, half)
    restored = reloaded(whole)
    assert told(restored.advance(later)) == told(whole.advance(later))


def test_another_state_version_is_refused() -> None:
    engine = AlertEngine(settings)
    with pytest.raises(ValueError, match="version"):
        restore(AlertEngine(settings), {**state_of(engine), "version": STATE_VERSION + 1})


def test_alerters_sharing_the_tenants_tell_together_what_one_tells(
        arrivals: list[Change]) -> None:
    alone = AlertEngine(settings)
    expected = run(alone, arrivals)
    instances = 3
    owners = {tenant: owner_of(tenant, instances) for tenant in ZONES}
    assert len(set(owners.values())) == 2  # two alerters with a tenant each, one idle
    got: list[Transition] = []
    for share in (TenantShare(instances, index) for index in range(instances)):
        engine = AlertEngine(settings)
        got += run(engine, [c for c in arrivals if share.owns(c.tenant)])
    for tenant in ZONES:  # each tenant's transitions, in the order they were told
        assert told([t for t in got if t.alert.tenant == tenant]) == told(
            [t for t in expected if t.alert.tenant == tenant])
    assert len(got) == len(expected)


@pytest.mark.parametrize(("instances", "index"), [(0, 0), (3, 3), (2, -1)])
def test_a_share_outside_the_instances_is_refused(instances: int, index: int) -> None:
    with pytest.raises(ValueError, match="ALERTER_"):
        TenantShare(instances, index)


def test_the_owner_of_a_tenant_is_stable() -> None:
    # Pinned: a change of hash would move tenants between running alerters and their
    # checkpoints (Python's own str hash is salted per process, so it cannot serve).
    assert [owner_of(f"tenant-{n}", 3) for n in range(6)] == [2, 0, 2, 2, 0, 1]
    assert {owner_of(f"tenant-{n}", 3) for n in range(30)} == {0, 1, 2}


def test_one_tenants_clock_running_ahead_makes_no_other_tenants_event_late(
        arrivals: list[Change]) -> None:
    """A front end of `stark` with its clock a year ahead: `acme` is judged as before."""
    acme = [c for c in arrivals if c.tenant == "acme"]
    alone = AlertEngine(settings)
    expected = run(alone, acme)
    ahead = arrivals[0]._replace(tenant="stark", event={
        **arrivals[0].event, "tenant": "stark",
        "occurred_at": (ts(acme[-1].event["occurred_at"]) + timedelta(days=365)).isoformat()})
    engine = AlertEngine(settings)
    got = run(engine, [ahead, *acme])
    assert told([t for t in got if t.alert.tenant == "acme"]) == told(expected)
