"""The sales ledger (services/eventstore/ledger.py): atomic batches, idempotency, what is stored.

Runs on the eventsourcing SQLite persistence in a temporary directory (and the
in-memory POPO one where noted). What is stored is read back from the
notification log, the way the relay reads it.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from services.eventstore.ledger import BatchRefused, SalesLedger
from tests.builders import ev

TENANT = "acme"
T0 = "2017-03-01T10:00:00"



def day(n: int, hour: int = 10) -> str:
    return f"2017-03-{1 + n:02d}T{hour:02d}:00:00"


def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "es.db")}


@pytest.fixture(params=["50000", "0"], ids=["subject-cache", "no-subject-cache"])
def ledger(tmp_path: Path, request: pytest.FixtureRequest) -> SalesLedger:
    # Every answer is the same whether subjects are kept in memory between batches or not.
    return SalesLedger(env={**sqlite_env(tmp_path), "SUBJECT_CACHE_MAXSIZE": request.param})


def record(ledger: SalesLedger, *events: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    return [(o.id, o.status) for o in ledger.record(list(events), tenant=TENANT, **kw)]


def stored(ledger: SalesLedger) -> list[dict[str, Any]]:
    """Every stored contract event, in notification-log order."""
    notifications = ledger.recorder.select_notifications(0, 100_000, inclusive_of_start=False)
    return [ledger.mapper.to_domain_event(n).envelope for n in notifications]


def high_water(ledger: SalesLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


@pytest.fixture
def world(ledger: SalesLedger) -> SalesLedger:
    record(
        ledger,
        ev("customer.created", T0, customer_id="C1"),
        ev("deal.created", T0, deal_id="D1", owner_id="r1", customer_id="C1", amount="1000"),
        ev("order.booked", T0, order_id="O1", customer_id="C1", amount="100"),
    )
    return ledger


# --- atomicity ---------------------------------------------------------------

def test_batch_with_one_bad_event_stores_none_of_it_and_names_the_bad_index(
        world: SalesLedger) -> None:
    before = high_water(world)
    batch = [
        ev("customer.created", day(1), customer_id="C9"),
        ev("deal.created", day(1), deal_id="D9", owner_id="r1", customer_id="C9"),
        ev("payment.received", day(1), payment_id="P1", order_id="NOPE", amount="5"),
        ev("lead.created", day(1), lead_id="L9"),
        ev("deal.stage_changed", day(2), deal_id="D1", stage="proposal"),
    ]
    with pytest.raises(BatchRefused) as info:
        world.record(batch, tenant=TENANT, unknown="refuse")
    assert [(i, e.field) for i, e in info.value.errors] == [(2, "data.order_id")]
    assert info.value.status == 422
    assert high_water(world) == before
    assert world.load(TENANT, "customer", "C9") is None
    assert world.load(TENANT, "deal", "D9") is None
    assert world.load(TENANT, "lead", "L9") is None
    d1 = world.load(TENANT, "deal", "D1")
    assert d1 is not None and d1.state is not None and d1.state.stage == "prospecting"
    assert d1.version == 1


def test_refused_batch_leaves_the_ledger_usable_for_the_same_events_once_fixed(
        world: SalesLedger) -> None:
    good = ev("customer.created", day(1), customer_id="C9")
    with pytest.raises(BatchRefused):
        world.record([good, ev("deal.teleported", day(1))], tenant=TENANT)
    assert record(world, good) == [(good["id"], "accepted")]


def test_every_bad_event_of_a_batch_is_reported(world: SalesLedger) -> None:
    batch = [
        ev("deal.teleported", day(1), deal_id="D1"),
        ev("customer.created", day(1), customer_id="C9"),
        ev("deal.amount_changed", day(1), deal_id="D1", amount="abc"),
        ev("deal.stage_changed", day(1), deal_id="NOPE", stage="proposal"),
        {"id": "x", "type": "deal.won", "occurred_at": "soon", "data": {"deal_id": "D1"}},
        ev("payment.received", day(1), payment_id="P1", order_id="O1", amount="101"),
    ]
    with pytest.raises(BatchRefused) as info:
        world.record(batch, tenant=TENANT, unknown="refuse")
    assert [(i, e.field) for i, e in info.value.errors] == [
        (0, "type"), (2, "data.amount"), (3, "data.deal_id"), (4, "occurred_at"),
        (5, "data.amount")]
    assert info.value.status == 422  # 422 whenever any refusal is not a conflict


def test_one_event_with_several_bad_fields_reports_each_field(world: SalesLedger) -> None:
    with pytest.raises(BatchRefused) as info:
        world.record([ev("order.booked", day(1), amount="-3")], tenant=TENANT)
    assert sorted(e.field for _, e in info.value.errors) == [
        "data.amount", "data.customer_id", "data.order_id"]
    assert {i for i, _ in info.value.errors} == {0}


def test_batch_of_only_conflicts_is_answered_409(world: SalesLedger) -> None:
    with pytest.raises(BatchRefused) as info:
        world.record([
            ev("customer.created", day(1), customer_id="C1"),
            ev("payment.received", day(1), payment_id="P1", order_id="O1", amount="500"),
        ], tenant=TENANT)
    assert [(i, e.field) for i, e in info.value.errors] == [
        (0, "data.customer_id"), (1, "data.amount")]
    assert info.value.status == 409


def test_non_object_event_is_refused_at_its_index(world: SalesLedger) -> None:
    with pytest.raises(BatchRefused) as info:
        world.record([ev("customer.created", day(1), customer_id="C9"), "nope"], tenant=TENANT)
    assert [i for i, _ in info.value.errors] == [1]
    assert info.value.status == 422


def test_empty_batch_stores_nothing(ledger: SalesLedger) -> None:
    assert ledger.record([], tenant=TENANT) == []
    assert high_water(ledger) == 0


# --- idempotency -------------------------------------------------------------

def test_same_event_id_in_two_requests_is_stored_once(ledger: SalesLedger) -> None:
    event = ev("customer.created", T0, customer_id="C1", id="evt-once")
    assert record(ledger, event) == [("evt-once", "accepted")]
    assert record(ledger, event) == [("evt-once", "duplicate")]
    assert [e["id"] for e in stored(ledger)] == ["evt-once"]


def test_same_event_id_twice_in_one_batch_is_stored_once(ledger: SalesLedger) -> None:
    event = ev("customer.created", T0, customer_id="C1", id="evt-twice")
    assert record(ledger, event, event) == [("evt-twice", "accepted"), ("evt-twice", "duplicate")]
    assert [e["id"] for e in stored(ledger)] == ["evt-twice"]


def test_retried_deal_created_is_a_duplicate_not_a_conflict(world: SalesLedger) -> None:
    event = ev("deal.created", day(1), deal_id="D9", owner_id="r1", id="evt-d9")
    record(world, event)
    before = high_water(world)
    assert record(world, event) == [("evt-d9", "duplicate")]
    assert high_water(world) == before


def test_retried_payment_is_not_counted_twice(world: SalesLedger) -> None:
    payment = ev("payment.received", day(1), payment_id="P1", order_id="O1", amount="60",
                 id="evt-p1")
    assert record(world, payment, payment) == [("evt-p1", "accepted"), ("evt-p1", "duplicate")]
    assert record(world, payment) == [("evt-p1", "duplicate")]
    o1 = world.load(TENANT, "order", "O1")
    assert o1 is not None and o1.state is not None and str(o1.state.paid) == "60"
    assert [e["id"] for e in stored(world)].count("evt-p1") == 1


def test_retry_of_an_older_event_after_later_ones_is_still_a_duplicate(
        world: SalesLedger) -> None:
    first = ev("deal.stage_changed", day(1), deal_id="D1", stage="proposal", id="evt-s1")
    record(world, first, ev("deal.won", day(2), deal_id="D1"))
    assert record(world, first) == [("evt-s1", "duplicate")]


def test_batch_mixing_new_and_already_stored_events_stores_only_the_new(
        world: SalesLedger) -> None:
    old = ev("customer.created", day(1), customer_id="C9", id="evt-old")
    record(world, old)
    before = high_water(world)
    new = ev("lead.created", day(1), lead_id="L9", id="evt-new")
    assert record(world, old, new) == [("evt-old", "duplicate"), ("evt-new", "accepted")]
    assert high_water(world) == before + 1


def test_duplicates_survive_reopening_the_store(tmp_path: Path) -> None:
    event = ev("customer.created", T0, customer_id="C1", id="evt-persisted")
    record(SalesLedger(env=sqlite_env(tmp_path)), event)
    reopened = SalesLedger(env=sqlite_env(tmp_path))
    assert record(reopened, event) == [("evt-persisted", "duplicate")]
    assert len(stored(reopened)) == 1


@pytest.mark.xfail(strict=True, reason="ledger.py: duplicates are only looked up in the "
                   "event's own subject, so an id reused for another subject is stored again")
def test_event_id_reused_for_another_subject_is_never_stored_twice(ledger: SalesLedger) -> None:
    record(ledger, ev("customer.created", T0, customer_id="C1", id="evt-reused"))
    with suppress(BatchRefused):  # refused or answered duplicate: either way, not stored again
        record(ledger, ev("customer.created", T0, customer_id="C2", id="evt-reused"))
    assert [e["id"] for e in stored(ledger)] == ["evt-reused"]


# --- what is stored ----------------------------------------------------------

def test_deal_created_without_stage_is_stored_in_the_first_default_stage(
        ledger: SalesLedger) -> None:
    record(ledger, ev("deal.created", T0, deal_id="D1", owner_id="r1", id="evt-d1"))
    (envelope,) = stored(ledger)
    assert envelope["id"] == "evt-d1"
    assert envelope["data"]["stage"] == "prospecting"


def test_deal_created_without_stage_enters_the_configured_pipelines_first_stage(
        ledger: SalesLedger) -> None:
    record(
        ledger,
        ev("pipeline.configured", T0, stages=["new", "demo"]),
        ev("deal.created", T0, deal_id="D1", owner_id="r1"),
    )
    record(ledger, ev("pipeline.configured", day(1), stages=["intake", "new"]))
    record(ledger, ev("deal.created", day(2), deal_id="D2", owner_id="r1"))
    stages = {e["data"]["deal_id"]: e["data"]["stage"] for e in stored(ledger)
              if e["type"] == "deal.created"}
    assert stages == {"D1": "new", "D2": "intake"}
    d1 = ledger.load(TENANT, "deal", "D1")
    assert d1 is not None and d1.state is not None and d1.state.stage == "new"


def test_deal_created_with_stage_is_stored_as_given(ledger: SalesLedger) -> None:
    record(ledger, ev("deal.created", T0, deal_id="D1", owner_id="r1", stage="proposal"))
    assert stored(ledger)[0]["data"]["stage"] == "proposal"


def test_occurred_at_without_offset_is_read_in_asia_shanghai(ledger: SalesLedger) -> None:
    record(ledger, ev("customer.created", "2017-03-01T10:00:00", customer_id="C1"))
    assert stored(ledger)[0]["occurred_at"] == "2017-03-01T10:00:00+08:00"


def test_occurred_at_with_offset_is_kept_as_given(ledger: SalesLedger) -> None:
    record(ledger, ev("customer.created", "2017-03-01T10:00:00-05:00", customer_id="C1"),
           ev("customer.created", "2017-03-01T10:00:00Z", customer_id="C2"))
    assert [e["occurred_at"] for e in stored(ledger)] == [
        "2017-03-01T10:00:00-05:00", "2017-03-01T10:00:00+00:00"]


def test_occurred_at_without_offset_is_read_in_the_tenants_time_zone(
        ledger: SalesLedger) -> None:
    record(ledger, ev("customer.created", "2017-03-01T10:00:00", customer_id="C1"),
           tz="Europe/Berlin")
    assert stored(ledger)[0]["occurred_at"] == "2017-03-01T10:00:00+01:00"


def test_stored_order_of_events_equals_batch_order(ledger: SalesLedger) -> None:
    batch = [
        ev("customer.created", T0, customer_id="C1"),
        ev("lead.created", T0, lead_id="L1"),
        ev("deal.created", day(1), deal_id="D1", owner_id="r1", customer_id="C1"),
        ev("lead.assigned", day(1), lead_id="L1", owner_id="r2"),
        ev("activity.logged", day(2), activity_id="A1", kind="call", rep_id="r1",
           customer_id="C1"),
        ev("deal.stage_changed", day(2), deal_id="D1", stage="proposal"),
        ev("lead.qualified", day(3), lead_id="L1"),
        ev("rep.joined", day(3), rep_id="r1", name="One", team_id="north"),
        ev("deal.won", day(4), deal_id="D1"),
        ev("order.booked", day(4), order_id="O1", customer_id="C1", deal_id="D1", amount="10"),
        ev("payment.received", day(5), payment_id="P1", order_id="O1", amount="10"),
    ]
    record(ledger, *batch)
    assert [e["id"] for e in stored(ledger)] == [e["id"] for e in batch]


def test_later_batches_follow_earlier_ones_in_the_log(world: SalesLedger) -> None:
    first = [e["id"] for e in stored(world)]
    later = ev("deal.stage_changed", day(1), deal_id="D1", stage="proposal")
    record(world, later)
    assert [e["id"] for e in stored(world)] == [*first, later["id"]]


def test_stored_envelope_is_canonical(ledger: SalesLedger) -> None:
    event = ev("customer.created", T0, customer_id="  C1  ", name=None, region="east",
               future_field=1)
    event["actor"] = "rep-17"
    record(ledger, event)
    assert stored(ledger) == [{
        "id": event["id"], "type": "customer.created", "tenant": TENANT,
        "occurred_at": "2017-03-01T10:00:00+08:00", "actor": "rep-17",
        "data": {"customer_id": "C1", "region": "east", "future_field": 1},
    }]


@pytest.mark.parametrize("given, kept", [
    ("1234.50", "1234.50"), (1234.5, "1234.5"), (0.1, "0.1"), (7, "7"), ("0.000001", "0.000001")])
def test_amounts_are_stored_as_exact_decimal_strings(ledger: SalesLedger, given: Any,
                                                     kept: str) -> None:
    record(ledger, ev("customer.created", T0, customer_id="C1"),
           ev("order.booked", T0, order_id="O1", customer_id="C1", amount=given))
    assert stored(ledger)[1]["data"]["amount"] == kept


def test_events_of_one_tenant_are_invisible_to_another(world: SalesLedger) -> None:
    assert world.load("globex", "deal", "D1") is None
    assert world.record([ev("deal.created", day(1), deal_id="D1", owner_id="r9")],
                        tenant="globex")[0].status == "accepted"


def test_rules_hold_after_reopening_the_store(tmp_path: Path) -> None:
    first = SalesLedger(env=sqlite_env(tmp_path))
    record(
        first,
        ev("pipeline.configured", T0, stages=["new", "demo"]),
        ev("customer.created", T0, customer_id="C1"),
        ev("deal.created", T0, deal_id="D1", owner_id="r1"),
        ev("deal.won", day(1), deal_id="D1", amount="500"),
        ev("order.booked", day(1), order_id="O1", customer_id="C1", amount="100"),
        ev("payment.received", day(2), payment_id="P1", order_id="O1", amount="99.99"),
    )
    reopened = SalesLedger(env=sqlite_env(tmp_path))
    for event, field, status in [
        (ev("deal.amount_changed", day(3), deal_id="D1", amount="1"), "data.deal_id", 409),
        (ev("payment.received", day(3), payment_id="P2", order_id="O1", amount="0.02"),
         "data.amount", 409),
        (ev("deal.created", day(3), deal_id="D2", owner_id="r1", stage="proposal"),
         "data.stage", 422),
        (ev("customer.created", day(3), customer_id="C1"), "data.customer_id", 409),
    ]:
        with pytest.raises(BatchRefused) as info:
            reopened.record([event], tenant=TENANT)
        assert [(i, e.field) for i, e in info.value.errors] == [(0, field)]
        assert info.value.status == status
    assert record(reopened, ev("payment.received", day(3), payment_id="P2", order_id="O1",
                               amount="0.01"))[0][1] == "accepted"


def test_in_memory_persistence_behaves_the_same() -> None:
    popo = SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    event = ev("deal.created", T0, deal_id="D1", owner_id="r1")
    assert record(popo, event, event) == [(event["id"], "accepted"), (event["id"], "duplicate")]
    assert stored(popo)[0]["data"]["stage"] == "prospecting"
    with pytest.raises(BatchRefused):
        popo.record([ev("customer.created", day(1), customer_id="C1"),
                     ev("deal.won", day(1), deal_id="NOPE")], tenant=TENANT, unknown="refuse")
    assert popo.load(TENANT, "customer", "C1") is None
    assert high_water(popo) == 1
