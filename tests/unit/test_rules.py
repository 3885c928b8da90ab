"""The rules of the write side (events/rules.py), pinned one behaviour at a time.

Each rule is exercised through `SalesLedger.record`, the way the API uses it, on
the eventsourcing SQLite persistence in a temporary directory: an accepted event
is answered `accepted`; a refused one raises `BatchRefused` naming the event's
index in the batch, the field at fault and the HTTP status (422 or 409).
Times without offset are read in Asia/Shanghai.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from events.contract import EVENT_TYPES
from events.order import compare_instants
from events.parsing import SalesEvent, parse_event
from events.rules import State, evolve, subject_of
from events.vocabulary import DEFAULT_STAGES
from services.eventstore.ledger import HOLD_FOR, BatchRefused, Outcome, SalesLedger
from tests.builders import ev

TENANT = "acme"
T0 = "2017-03-01T10:00:00"  # the seeded world's time; later events use later days



def day(n: int, hour: int = 10) -> str:
    """A time n days after the seeded world, local (Asia/Shanghai)."""
    return f"2017-03-{1 + n:02d}T{hour:02d}:00:00"


@pytest.fixture
def ledger(tmp_path: Path) -> SalesLedger:
    return SalesLedger(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                            "SQLITE_DBNAME": str(tmp_path / "es.db")})


def record(ledger: SalesLedger, *events: dict[str, Any]) -> list[str]:
    return [o.status for o in ledger.record(list(events), tenant=TENANT)]


def refusal(ledger: SalesLedger, *events: dict[str, Any]) -> BatchRefused:
    before = ledger.recorder.max_notification_id()
    with pytest.raises(BatchRefused) as info:
        ledger.record(list(events), tenant=TENANT, unknown="refuse")
    assert ledger.recorder.max_notification_id() == before, "a refused batch stored something"
    return info.value


def assert_refused(ledger: SalesLedger, *events: dict[str, Any], index: int = 0, field: str,
                   status: int) -> None:
    refused = refusal(ledger, *events)
    assert [(i, e.field) for i, e in refused.errors] == [(index, field)], refused.errors
    assert all(e.message for _, e in refused.errors)
    assert refused.status == status


def state(ledger: SalesLedger, kind: str, key: str) -> State:
    subject = ledger.load(TENANT, kind, key)
    assert subject is not None and subject.state is not None, f"no {kind} {key}"
    return subject.state


@pytest.fixture
def world(ledger: SalesLedger) -> SalesLedger:
    """Rep r1, customer C1, lead L1, open deal D1 (prospecting, 1000), order O1 (100)."""
    record(
        ledger,
        ev("rep.joined", T0, rep_id="r1", name="Rep One", team_id="north"),
        ev("customer.created", T0, customer_id="C1", name="Cust"),
        ev("lead.created", T0, lead_id="L1", source="web"),
        ev("deal.created", T0, deal_id="D1", owner_id="r1", customer_id="C1", amount="1000",
           stage="prospecting"),
        ev("order.booked", T0, order_id="O1", customer_id="C1", amount="100"),
    )
    return ledger


# --- accepted ---------------------------------------------------------------

def test_rep_joins_then_moves_team(ledger: SalesLedger) -> None:
    assert record(
        ledger,
        ev("rep.joined", day(0), rep_id="r9", name="Nine", team_id="north", manager_id="m1",
           region="east"),
        ev("rep.moved", day(1), rep_id="r9", team_id="south", manager_id="m2"),
    ) == ["accepted", "accepted"]
    assert ledger.load(TENANT, "rep", "r9") is not None


def test_customer_is_created_with_optional_profile(ledger: SalesLedger) -> None:
    assert record(ledger, ev("customer.created", day(0), customer_id="C9", name="Nine Ltd",
                             segment="smb", industry="retail", region="east")) == ["accepted"]
    assert ledger.load(TENANT, "customer", "C9") is not None


def test_lead_goes_through_assigned_qualified_converted(world: SalesLedger) -> None:
    assert record(
        world,
        ev("lead.assigned", day(1), lead_id="L1", owner_id="r1"),
        ev("lead.qualified", day(2), lead_id="L1", reason="budget"),
        ev("deal.created", day(3), deal_id="D2", owner_id="r1", lead_id="L1"),
        ev("lead.converted", day(3), lead_id="L1", deal_id="D2"),
    ) == ["accepted"] * 4
    assert state(world, "lead", "L1").status == "converted"


def test_lead_can_be_disqualified(world: SalesLedger) -> None:
    assert record(world, ev("lead.disqualified", day(1), lead_id="L1", reason="no budget")) == [
        "accepted"]
    assert state(world, "lead", "L1").status == "disqualified"


@pytest.mark.parametrize("subject", [{"lead_id": "L1"}, {"deal_id": "D1"}, {"customer_id": "C1"}])
def test_activity_is_logged_and_scheduled_on_a_lead_deal_or_customer(
        world: SalesLedger, subject: dict[str, str]) -> None:
    assert record(
        world,
        ev("activity.logged", day(1), activity_id="A1", kind="call", rep_id="r1",
           duration_min=15, outcome="reached", **subject),
        ev("activity.scheduled", day(1), activity_id="A2", kind="visit", rep_id="r1",
           due_at="2017-03-09T10:00:00+08:00", **subject),
    ) == ["accepted", "accepted"]


def test_deal_lifecycle_up_to_won_is_accepted(world: SalesLedger) -> None:
    assert record(
        world,
        ev("deal.created", day(1), deal_id="D2", owner_id="r1", customer_id="C1", lead_id="L1",
           amount="5000.50", currency="CNY", product="widget", source="web",
           stage="qualification", expected_close="2017-04-30"),
        ev("deal.stage_changed", day(2), deal_id="D2", stage="proposal"),
        ev("deal.amount_changed", day(3), deal_id="D2", amount="6000"),
        ev("deal.owner_changed", day(4), deal_id="D2", owner_id="r2"),
        ev("deal.close_date_changed", day(5), deal_id="D2", expected_close="2017-05-31"),
        ev("deal.close_date_changed", day(6), deal_id="D2", expected_close="2017-06-30"),
        ev("quote.sent", day(7), deal_id="D2", quote_id="Q1", amount="5900"),
        ev("deal.stage_changed", day(8), deal_id="D2", stage="negotiation"),
        ev("deal.won", day(9), deal_id="D2", amount="5800"),
    ) == ["accepted"] * 9
    won = state(world, "deal", "D2")
    assert (won.status, won.stage, won.amount) == ("won", "negotiation", Decimal("5800"))


def test_deal_won_without_amount_keeps_its_last_amount(world: SalesLedger) -> None:
    assert record(world, ev("deal.won", day(1), deal_id="D1")) == ["accepted"]
    assert state(world, "deal", "D1").amount == Decimal("1000")


def test_deal_can_be_lost_with_reason_and_competitor(world: SalesLedger) -> None:
    assert record(world, ev("deal.lost", day(1), deal_id="D1", reason="price",
                            competitor="Other Co")) == ["accepted"]
    assert state(world, "deal", "D1").status == "lost"


def test_deal_may_move_backwards_between_open_stages(world: SalesLedger) -> None:
    assert record(
        world,
        ev("deal.stage_changed", day(1), deal_id="D1", stage="negotiation"),
        ev("deal.stage_changed", day(2), deal_id="D1", stage="qualification"),
    ) == ["accepted", "accepted"]


def test_order_is_booked_for_a_deal_and_paid_in_instalments_up_to_exactly_its_amount(
        world: SalesLedger) -> None:
    assert record(
        world,
        ev("order.booked", day(1), order_id="O2", customer_id="C1", deal_id="D1", amount="1000",
           product="widget"),
        ev("payment.received", day(2), payment_id="P1", order_id="O2", amount="400.25"),
        ev("payment.received", day(3), payment_id="P2", order_id="O2", amount="599.75"),
    ) == ["accepted"] * 3
    order = state(world, "order", "O2")
    assert (order.amount, order.paid) == (Decimal("1000"), Decimal("1000"))


def test_payment_of_exactly_the_order_amount_is_accepted(world: SalesLedger) -> None:
    assert record(world, ev("payment.received", day(1), payment_id="P1", order_id="O1",
                            amount="100.000")) == ["accepted"]


@pytest.mark.parametrize("scope, scope_id, period", [
    ("company", None, "2017"), ("team", "north", "2017-Q1"), ("rep", "r1", "2017-03")])
def test_target_is_set_for_each_scope_and_period_form(
        ledger: SalesLedger, scope: str, scope_id: str | None, period: str) -> None:
    data = {"scope": scope, "period": period, "metric": "won_value", "value": "100000"}
    if scope_id:
        data["scope_id"] = scope_id
    assert record(ledger, ev("target.set", day(0), **data)) == ["accepted"]


def test_target_set_again_replaces_the_value(ledger: SalesLedger) -> None:
    target = {"scope": "team", "scope_id": "north", "period": "2017", "metric": "won_deals"}
    assert record(
        ledger,
        ev("target.set", day(0), value=10, **target),
        ev("target.set", day(1), value=12, **target),
    ) == ["accepted", "accepted"]
    assert state(ledger, "target", "team/north/2017/won_deals").amount == Decimal(12)


def test_pipeline_is_configured_and_its_stages_are_then_usable(ledger: SalesLedger) -> None:
    assert record(
        ledger,
        ev("pipeline.configured", day(0), stages=["new", "demo", "contract"],
           win_probabilities={"new": 0.1, "demo": 0.4, "contract": 0.8},
           stall_days={"new": 7, "demo": 14}),
        ev("deal.created", day(1), deal_id="D9", owner_id="r1", stage="demo"),
        ev("deal.stage_changed", day(2), deal_id="D9", stage="contract"),
    ) == ["accepted"] * 3
    assert state(ledger, "pipeline", TENANT).stages == ("new", "demo", "contract")


def test_pipeline_can_be_configured_again(ledger: SalesLedger) -> None:
    record(ledger, ev("pipeline.configured", day(0), stages=["new", "demo"]))
    assert record(ledger, ev("pipeline.configured", day(1), stages=["a", "b"])) == ["accepted"]
    assert state(ledger, "pipeline", TENANT).stages == ("a", "b")


def test_scoring_weights_are_replaced_whole_and_must_add_up(ledger: SalesLedger) -> None:
    def weights(results: int, process: int, customer: int, at: str) -> dict[str, Any]:
        return ev("scoring.configured", at, weights={"results": results, "process": process,
                                                    "customer": customer})

    assert record(ledger, weights(60, 30, 10, day(0))) == ["accepted"]
    assert record(ledger, weights(50, 25, 25, day(1))) == ["accepted"]
    assert_refused(ledger, weights(50, 30, 30, day(2)), field="data.weights", status=422)


def test_every_contract_event_type_is_covered_by_these_tests() -> None:
    exercised = {
        "rep.joined", "rep.moved", "customer.created", "lead.created", "lead.assigned",
        "lead.qualified", "lead.disqualified", "lead.converted", "activity.logged",
        "activity.scheduled", "deal.created", "deal.stage_changed", "deal.amount_changed",
        "deal.owner_changed", "deal.close_date_changed", "quote.sent", "deal.won", "deal.lost",
        "order.booked", "payment.received", "target.set", "pipeline.configured",
        "scoring.configured",
    }
    assert set(EVENT_TYPES) == exercised


def test_unknown_data_fields_from_later_versions_are_kept(world: SalesLedger) -> None:
    assert record(world, ev("deal.stage_changed", day(1), deal_id="D1", stage="proposal",
                            probability_hint=0.3)) == ["accepted"]


# --- refused: the contract's shape -----------------------------------------

def test_unknown_event_type_is_refused(ledger: SalesLedger) -> None:
    assert_refused(ledger, ev("deal.teleported", day(0), deal_id="D1"),
                   field="type", status=422)


def test_event_without_required_data_field_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.stage_changed", day(1), stage="proposal"),
                   field="data.deal_id", status=422)


def test_non_numeric_amount_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.amount_changed", day(1), deal_id="D1", amount="abc"),
                   field="data.amount", status=422)


def test_unparseable_occurred_at_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.stage_changed", "yesterday afternoon", deal_id="D1",
                             stage="proposal"),
                   field="occurred_at", status=422)


@pytest.mark.parametrize("event", [
    ev("order.booked", day(1), order_id="O9", customer_id="C1", amount="-1"),
    ev("payment.received", day(1), payment_id="P9", order_id="O1", amount="-0.01"),
    ev("deal.created", day(1), deal_id="D9", owner_id="r1", amount=-5),
    ev("deal.amount_changed", day(1), deal_id="D1", amount="-100"),
    ev("deal.won", day(1), deal_id="D1", amount="-1"),
    ev("quote.sent", day(1), deal_id="D1", quote_id="Q9", amount="-1"),
], ids=lambda e: e["type"])
def test_negative_amount_is_refused(world: SalesLedger, event: dict[str, Any]) -> None:
    assert_refused(world, event, field="data.amount", status=422)


def test_negative_target_value_is_refused(ledger: SalesLedger) -> None:
    assert_refused(ledger, ev("target.set", day(0), scope="company", period="2017",
                              metric="won_value", value="-1"),
                   field="data.value", status=422)


def test_activity_of_unknown_kind_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("activity.logged", day(1), activity_id="A1", kind="telepathy",
                             rep_id="r1", deal_id="D1"),
                   field="data.kind", status=422)


def test_event_naming_another_tenant_is_refused(world: SalesLedger) -> None:
    event = ev("customer.created", day(1), customer_id="C9")
    event["tenant"] = "globex"
    assert_refused(world, event, field="tenant", status=422)


# --- refused: unknown subjects and references --------------------------------

@pytest.mark.parametrize("event, field", [
    (ev("deal.stage_changed", day(1), deal_id="NOPE", stage="proposal"), "data.deal_id"),
    (ev("deal.amount_changed", day(1), deal_id="NOPE", amount="1"), "data.deal_id"),
    (ev("deal.owner_changed", day(1), deal_id="NOPE", owner_id="r1"), "data.deal_id"),
    (ev("deal.close_date_changed", day(1), deal_id="NOPE", expected_close="2017-05-01"),
     "data.deal_id"),
    (ev("quote.sent", day(1), deal_id="NOPE", quote_id="Q1", amount="1"), "data.deal_id"),
    (ev("deal.won", day(1), deal_id="NOPE"), "data.deal_id"),
    (ev("deal.lost", day(1), deal_id="NOPE"), "data.deal_id"),
    (ev("lead.assigned", day(1), lead_id="NOPE", owner_id="r1"), "data.lead_id"),
    (ev("lead.qualified", day(1), lead_id="NOPE"), "data.lead_id"),
    (ev("lead.disqualified", day(1), lead_id="NOPE"), "data.lead_id"),
    (ev("lead.converted", day(1), lead_id="NOPE", deal_id="D1"), "data.lead_id"),
    (ev("payment.received", day(1), payment_id="P1", order_id="NOPE", amount="1"),
     "data.order_id"),
    (ev("rep.moved", day(1), rep_id="NOPE", team_id="south"), "data.rep_id"),
    (ev("activity.logged", day(1), activity_id="A1", kind="call", rep_id="r1", deal_id="NOPE"),
     "data.deal_id"),
    (ev("activity.logged", day(1), activity_id="A1", kind="call", rep_id="r1", lead_id="NOPE"),
     "data.lead_id"),
    (ev("activity.scheduled", day(1), activity_id="A1", kind="call", rep_id="r1",
        customer_id="NOPE", due_at="2017-03-09T10:00:00"), "data.customer_id"),
], ids=lambda v: v["type"] if isinstance(v, dict) else v)
def test_event_for_an_unknown_subject_is_refused(world: SalesLedger, event: dict[str, Any],
                                                 field: str) -> None:
    assert_refused(world, event, field=field, status=422)


def test_deal_created_for_unknown_customer_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.created", day(1), deal_id="D9", owner_id="r1",
                             customer_id="NOPE"),
                   field="data.customer_id", status=422)


def test_deal_created_from_unknown_lead_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.created", day(1), deal_id="D9", owner_id="r1",
                             customer_id="C1", lead_id="NOPE"),
                   field="data.lead_id", status=422)


def test_order_booked_for_unknown_customer_or_deal_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("order.booked", day(1), order_id="O9", customer_id="NOPE",
                             amount="1"),
                   field="data.customer_id", status=422)
    assert_refused(world, ev("order.booked", day(1), order_id="O9", customer_id="C1",
                             deal_id="NOPE", amount="1"),
                   field="data.deal_id", status=422)


def test_reference_created_earlier_in_the_same_batch_is_known(ledger: SalesLedger) -> None:
    assert record(
        ledger,
        ev("customer.created", day(0), customer_id="C9"),
        ev("lead.created", day(0), lead_id="L9"),
        ev("deal.created", day(0), deal_id="D9", owner_id="r1", customer_id="C9", lead_id="L9"),
        ev("order.booked", day(1), order_id="O9", customer_id="C9", deal_id="D9", amount="5"),
    ) == ["accepted"] * 4


# --- refused: stages ---------------------------------------------------------

def test_deal_created_in_a_stage_outside_the_default_pipeline_is_refused(
        world: SalesLedger) -> None:
    assert_refused(world, ev("deal.created", day(1), deal_id="D9", owner_id="r1", stage="demo"),
                   field="data.stage", status=422)


@pytest.mark.parametrize("stage", ["demo", "won", "lost", "Proposal"])
def test_stage_change_to_a_stage_outside_the_default_pipeline_is_refused(
        world: SalesLedger, stage: str) -> None:
    assert_refused(world, ev("deal.stage_changed", day(1), deal_id="D1", stage=stage),
                   field="data.stage", status=422)


def test_every_default_stage_is_accepted(world: SalesLedger) -> None:
    assert record(world, *(ev("deal.stage_changed", day(1 + n), deal_id="D1", stage=s)
                           for n, s in enumerate(DEFAULT_STAGES))) == ["accepted"] * 4


def test_after_custom_pipeline_the_default_stages_are_refused(world: SalesLedger) -> None:
    record(world, ev("pipeline.configured", day(1), stages=["new", "demo"]))
    assert_refused(world, ev("deal.stage_changed", day(2), deal_id="D1", stage="proposal"),
                   field="data.stage", status=422)
    assert_refused(world, ev("deal.created", day(2), deal_id="D9", owner_id="r1",
                             stage="prospecting"),
                   field="data.stage", status=422)
    assert record(world, ev("deal.stage_changed", day(2), deal_id="D1", stage="demo")) == [
        "accepted"]


def test_pipeline_configured_earlier_in_the_same_batch_applies_to_later_events(
        ledger: SalesLedger) -> None:
    assert_refused(
        ledger,
        ev("pipeline.configured", day(0), stages=["new", "demo"]),
        ev("deal.created", day(1), deal_id="D9", owner_id="r1", stage="proposal"),
        index=1, field="data.stage", status=422)


# --- refused: closed deals ---------------------------------------------------

CLOSED_DEAL_CHANGES = [
    ev("deal.stage_changed", day(5), deal_id="D1", stage="proposal"),
    ev("deal.amount_changed", day(5), deal_id="D1", amount="2000"),
    ev("deal.owner_changed", day(5), deal_id="D1", owner_id="r2"),
    ev("deal.close_date_changed", day(5), deal_id="D1", expected_close="2017-09-30"),
    ev("quote.sent", day(5), deal_id="D1", quote_id="Q9", amount="900"),
    ev("deal.won", day(5), deal_id="D1"),
    ev("deal.lost", day(5), deal_id="D1"),
]


@pytest.mark.parametrize("change", CLOSED_DEAL_CHANGES, ids=lambda e: e["type"])
def test_any_change_to_a_won_deal_is_refused(world: SalesLedger, change: dict[str, Any]) -> None:
    record(world, ev("deal.won", day(1), deal_id="D1", amount="1200"))
    assert_refused(world, change, field="data.deal_id", status=409)
    assert state(world, "deal", "D1").status == "won"


@pytest.mark.parametrize("change", CLOSED_DEAL_CHANGES, ids=lambda e: e["type"])
def test_any_change_to_a_lost_deal_is_refused(world: SalesLedger,
                                              change: dict[str, Any]) -> None:
    record(world, ev("deal.lost", day(1), deal_id="D1", reason="price"))
    assert_refused(world, change, field="data.deal_id", status=409)
    assert state(world, "deal", "D1").status == "lost"


@pytest.mark.parametrize("outcome", [ev("deal.won", day(1), deal_id="D1"),
                                     ev("deal.lost", day(1), deal_id="D1")],
                         ids=lambda e: e["type"])
def test_activities_on_a_closed_deal_are_accepted(world: SalesLedger,
                                                  outcome: dict[str, Any]) -> None:
    # post-sale calls and next steps are real work
    record(world, outcome)
    assert record(
        world,
        ev("activity.logged", day(5), activity_id="A9", kind="call", rep_id="r1", deal_id="D1"),
        ev("activity.scheduled", day(5), activity_id="A10", kind="call", rep_id="r1",
           deal_id="D1", due_at="2017-03-20T10:00:00"),
    ) == ["accepted", "accepted"]


def test_change_after_win_in_the_same_batch_is_refused(world: SalesLedger) -> None:
    assert_refused(
        world,
        ev("deal.won", day(1), deal_id="D1"),
        ev("deal.amount_changed", day(2), deal_id="D1", amount="1"),
        index=1, field="data.deal_id", status=409)


def test_order_and_payment_may_still_follow_a_won_deal(world: SalesLedger) -> None:
    assert record(
        world,
        ev("deal.won", day(1), deal_id="D1"),
        ev("order.booked", day(2), order_id="O9", customer_id="C1", deal_id="D1", amount="1000"),
        ev("payment.received", day(3), payment_id="P9", order_id="O9", amount="1000"),
    ) == ["accepted"] * 3


# --- refused: leads ----------------------------------------------------------

def test_converted_lead_cannot_be_converted_again_or_disqualified(world: SalesLedger) -> None:
    record(world, ev("lead.converted", day(1), lead_id="L1", deal_id="D1"))
    assert_refused(world, ev("lead.converted", day(2), lead_id="L1", deal_id="D1"),
                   field="data.lead_id", status=409)
    assert_refused(world, ev("lead.disqualified", day(2), lead_id="L1"),
                   field="data.lead_id", status=409)


def test_converted_lead_cannot_be_converted_again_after_a_requalification(
        world: SalesLedger) -> None:
    record(world, ev("deal.created", day(1), deal_id="D2", owner_id="r1"),
           ev("lead.converted", day(1), lead_id="L1", deal_id="D1"))
    refused = refusal(world, ev("lead.qualified", day(2), lead_id="L1"),
                      ev("lead.converted", day(3), lead_id="L1", deal_id="D2"))
    assert {e.field for _, e in refused.errors} == {"data.lead_id"}


# --- refused: payments -------------------------------------------------------

def test_payment_beyond_order_total_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("payment.received", day(1), payment_id="P1", order_id="O1",
                             amount="100.01"),
                   field="data.amount", status=409)


def test_payment_bringing_total_paid_beyond_order_total_is_refused(world: SalesLedger) -> None:
    record(world, ev("payment.received", day(1), payment_id="P1", order_id="O1", amount="60"))
    assert_refused(world, ev("payment.received", day(2), payment_id="P2", order_id="O1",
                             amount="40.000001"),
                   field="data.amount", status=409)
    assert record(world, ev("payment.received", day(2), payment_id="P2", order_id="O1",
                            amount="40")) == ["accepted"]
    assert_refused(world, ev("payment.received", day(3), payment_id="P3", order_id="O1",
                             amount="0.01"),
                   field="data.amount", status=409)
    assert state(world, "order", "O1").paid == Decimal("100")


def test_overpayment_within_one_batch_is_refused(world: SalesLedger) -> None:
    assert_refused(
        world,
        ev("payment.received", day(1), payment_id="P1", order_id="O1", amount="70"),
        ev("payment.received", day(2), payment_id="P2", order_id="O1", amount="31"),
        index=1, field="data.amount", status=409)


# --- refused: creating twice -------------------------------------------------

@pytest.mark.parametrize("again, field", [
    (ev("deal.created", day(1), deal_id="D1", owner_id="r1"), "data.deal_id"),
    (ev("customer.created", day(1), customer_id="C1"), "data.customer_id"),
    (ev("lead.created", day(1), lead_id="L1"), "data.lead_id"),
    (ev("order.booked", day(1), order_id="O1", customer_id="C1", amount="5"), "data.order_id"),
    (ev("rep.joined", day(1), rep_id="r1", name="Again", team_id="x"), "data.rep_id"),
], ids=lambda v: v["type"] if isinstance(v, dict) else v)
def test_creating_an_existing_subject_again_with_a_new_event_id_is_a_conflict(
        world: SalesLedger, again: dict[str, Any], field: str) -> None:
    assert_refused(world, again, field=field, status=409)


def test_creating_a_deal_twice_in_one_batch_is_a_conflict(ledger: SalesLedger) -> None:
    assert_refused(
        ledger,
        ev("deal.created", day(0), deal_id="D9", owner_id="r1"),
        ev("deal.created", day(0), deal_id="D9", owner_id="r2"),
        index=1, field="data.deal_id", status=409)


# --- time: business time is the order, whatever arrived first ------------------

def test_event_earlier_than_the_deals_latest_event_is_judged_at_its_own_time(
        world: SalesLedger) -> None:
    record(world, ev("deal.stage_changed", day(3), deal_id="D1", stage="proposal"))
    assert record(world, ev("deal.amount_changed", day(2), deal_id="D1", amount="5")) == [
        "accepted"]
    assert state(world, "deal", "D1").stage == "proposal"


def test_the_latest_change_in_business_time_wins_whatever_arrived_last(
        world: SalesLedger) -> None:
    record(world, ev("deal.amount_changed", day(3), deal_id="D1", amount="300"),
           ev("deal.amount_changed", day(2), deal_id="D1", amount="200"))
    assert state(world, "deal", "D1").amount == Decimal("300")
    assert state(world, "deal", "D1").last_at == datetime.fromisoformat(
        "2017-03-04T10:00:00+08:00")


def test_stage_change_dated_before_the_win_is_accepted_after_it(world: SalesLedger) -> None:
    record(world, ev("deal.won", day(5), deal_id="D1", amount="1200"))
    assert record(world, ev("deal.stage_changed", day(3), deal_id="D1", stage="negotiation"),
                  ev("deal.amount_changed", day(4), deal_id="D1", amount="900")) == [
        "accepted", "accepted"]
    won = state(world, "deal", "D1")
    assert (won.status, won.stage, won.amount) == ("won", "negotiation", Decimal("1200"))


def test_change_dated_after_the_win_is_refused_whenever_it_arrives(world: SalesLedger) -> None:
    record(world, ev("deal.won", day(5), deal_id="D1"))
    assert_refused(world, ev("deal.amount_changed", day(6), deal_id="D1", amount="1"),
                   field="data.deal_id", status=409)


def test_late_win_that_would_close_the_deal_before_a_stored_change_is_refused(
        world: SalesLedger) -> None:
    record(world, ev("deal.stage_changed", day(5), deal_id="D1", stage="proposal"))
    refused = refusal(world, ev("deal.won", day(3), deal_id="D1"))
    assert [(i, e.field) for i, e in refused.errors] == [(0, "data.deal_id")]
    assert "later deal.stage_changed" in refused.errors[0][1].message
    assert refused.status == 409


def test_late_payment_that_would_overpay_with_the_later_ones_is_refused(
        world: SalesLedger) -> None:
    record(world, ev("payment.received", day(5), payment_id="P2", order_id="O1", amount="70"))
    assert_refused(world, ev("payment.received", day(2), payment_id="P1", order_id="O1",
                             amount="40"),
                   field="data.amount", status=409)
    assert record(world, ev("payment.received", day(2), payment_id="P1", order_id="O1",
                            amount="30")) == ["accepted"]


def test_lead_qualified_dated_before_its_conversion_is_accepted_after_it(
        world: SalesLedger) -> None:
    record(world, ev("lead.converted", day(4), lead_id="L1", deal_id="D1"))
    assert record(world, ev("lead.qualified", day(2), lead_id="L1")) == ["accepted"]
    assert state(world, "lead", "L1").status == "converted"
    assert_refused(world, ev("lead.disqualified", day(5), lead_id="L1"),
                   field="data.lead_id", status=409)


def test_event_earlier_than_its_subjects_creation_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("payment.received", "2017-02-28T10:00:00", payment_id="P1",
                             order_id="O1", amount="1"),
                   field="occurred_at", status=422)


def test_event_at_the_same_instant_as_the_previous_one_is_accepted(world: SalesLedger) -> None:
    # 02:00Z is 10:00 in Shanghai: the same instant as the deal's creation.
    assert record(world, ev("deal.stage_changed", "2017-03-01T02:00:00Z", deal_id="D1",
                            stage="proposal")) == ["accepted"]


def test_earlier_instant_written_with_another_offset_is_refused(world: SalesLedger) -> None:
    # 08:59 at +07:00 is 09:59 in Shanghai: one minute before the deal was created.
    assert_refused(world, ev("deal.stage_changed", "2017-03-01T08:59:00+07:00", deal_id="D1",
                             stage="proposal"),
                   field="occurred_at", status=422)


def test_stage_change_dated_before_a_logged_activity_is_accepted(world: SalesLedger) -> None:
    # the rep logs today's call before the app syncs yesterday's stage change
    record(world, ev("activity.logged", day(4), activity_id="A1", kind="call", rep_id="r1",
                     deal_id="D1"))
    assert record(world, ev("deal.stage_changed", day(3), deal_id="D1", stage="proposal")) == [
        "accepted"]
    assert state(world, "deal", "D1").stage == "proposal"


def test_earlier_event_for_another_subject_is_accepted(world: SalesLedger) -> None:
    record(world, ev("deal.stage_changed", day(5), deal_id="D1", stage="proposal"))
    assert record(world, ev("lead.assigned", day(2), lead_id="L1", owner_id="r1")) == [
        "accepted"]


# --- refused: activities, targets, pipelines ---------------------------------

def test_activity_naming_two_subjects_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("activity.logged", day(1), activity_id="A1", kind="call",
                             rep_id="r1", deal_id="D1", customer_id="C1"),
                   field="data", status=422)


def test_activity_naming_no_subject_is_refused(world: SalesLedger) -> None:
    assert_refused(world, ev("activity.scheduled", day(1), activity_id="A1", kind="call",
                             rep_id="r1", due_at="2017-03-09T10:00:00"),
                   field="data", status=422)


@pytest.mark.parametrize("scope", ["team", "rep"])
def test_target_for_team_or_rep_without_scope_id_is_refused(ledger: SalesLedger,
                                                            scope: str) -> None:
    assert_refused(ledger, ev("target.set", day(0), scope=scope, period="2017-Q2",
                              metric="won_value", value="5"),
                   field="data.scope_id", status=422)


def test_target_with_malformed_period_is_refused(ledger: SalesLedger) -> None:
    assert_refused(ledger, ev("target.set", day(0), scope="company", period="2017-13",
                              metric="won_value", value="5"),
                   field="data.period", status=422)


def test_pipeline_with_duplicate_stages_is_refused(ledger: SalesLedger) -> None:
    assert_refused(ledger, ev("pipeline.configured", day(0), stages=["new", "demo", "new"]),
                   field="data.stages", status=422)


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_pipeline_containing_an_outcome_as_a_stage_is_refused(ledger: SalesLedger,
                                                              outcome: str) -> None:
    assert_refused(ledger, ev("pipeline.configured", day(0), stages=["new", outcome]),
                   field="data.stages", status=422)


def test_empty_pipeline_is_refused(ledger: SalesLedger) -> None:
    assert_refused(ledger, ev("pipeline.configured", day(0), stages=[]),
                   field="data.stages", status=422)


# --- the pure functions ------------------------------------------------------

def parsed(event: dict[str, Any]) -> SalesEvent:
    return parse_event(event, tenant=TENANT)


@pytest.mark.parametrize("event, subject", [
    (ev("activity.logged", T0, activity_id="A", kind="call", rep_id="r", lead_id="L"),
     ("lead", "L", "data.lead_id")),
    (ev("quote.sent", T0, deal_id="D", quote_id="Q", amount=1), ("deal", "D", "data.deal_id")),
    (ev("payment.received", T0, payment_id="P", order_id="O", amount=1),
     ("order", "O", "data.order_id")),
    (ev("lead.converted", T0, lead_id="L", deal_id="D"), ("lead", "L", "data.lead_id")),
    (ev("target.set", T0, scope="company", period="2017", metric="collected", value=1),
     ("target", "company/*/2017/collected", "data")),
    (ev("pipeline.configured", T0, stages=["a"]), ("pipeline", TENANT, "data")),
], ids=lambda v: v["type"] if isinstance(v, dict) else v[0])
def test_each_event_belongs_to_one_subject(event: dict[str, Any],
                                           subject: tuple[str, str, str]) -> None:
    s = subject_of(parsed(event))
    assert (s.kind, s.key, s.key_field) == subject


def test_evolve_sums_payments_and_tracks_last_time() -> None:
    booked = evolve(parsed(ev("order.booked", T0, order_id="O", customer_id="C", amount="10")),
                    None)
    paid = evolve(parsed(ev("payment.received", day(2), payment_id="P", order_id="O",
                            amount="2.5")), booked)
    assert (paid.amount, paid.paid) == (Decimal("10"), Decimal("2.5"))
    assert paid.last_at == datetime.fromisoformat("2017-03-03T10:00:00+08:00")


# --- early events: held until their subject arrives ---------------------------

def held(ledger: SalesLedger, kind: str, key: str) -> Any:
    return ledger.load(TENANT, "held", f"{kind}/{key}")


def test_event_for_an_unknown_deal_is_held_and_applied_when_the_deal_arrives(
        world: SalesLedger) -> None:
    # a webhook sender delivers the stage change and the win before the creation
    assert record(world, ev("deal.won", day(4), deal_id="D9", amount="50"),
                  ev("deal.stage_changed", day(2), deal_id="D9", stage="proposal")) == [
        "held", "held"]
    assert world.load(TENANT, "deal", "D9") is None
    assert len(held(world, "deal", "D9").pending) == 2
    assert record(world, ev("deal.created", day(1), deal_id="D9", owner_id="r1")) == [
        "accepted"]
    deal = state(world, "deal", "D9")
    assert (deal.status, deal.stage, deal.amount) == ("won", "proposal", Decimal("50"))
    assert held(world, "deal", "D9").pending == {}


def test_held_event_sent_again_is_a_duplicate(world: SalesLedger) -> None:
    early = ev("deal.stage_changed", day(2), deal_id="D9", stage="proposal")
    assert record(world, early) == ["held"]
    assert record(world, early) == ["duplicate"]
    record(world, ev("deal.created", day(1), deal_id="D9", owner_id="r1"))
    assert record(world, early) == ["duplicate"]


def test_deal_waiting_for_its_customer_is_held_then_created(world: SalesLedger) -> None:
    assert record(world, ev("deal.created", day(2), deal_id="D9", owner_id="r1",
                            customer_id="C9")) == ["held"]
    call = ev("activity.logged", day(3), activity_id="A9", kind="call", rep_id="r1",
              deal_id="D9")
    assert record(world, call) == ["held"]
    # the customer releases the deal, and the deal releases its activity
    assert record(world, ev("customer.created", day(5), customer_id="C9")) == ["accepted"]
    assert state(world, "deal", "D9").status == "open"
    assert call["id"] in world.load(TENANT, "deal", "D9").seen


def test_held_event_its_subject_refuses_is_dropped_with_the_reason(world: SalesLedger) -> None:
    assert record(world, ev("deal.stage_changed", day(1), deal_id="D9", stage="proposal")) == [
        "held"]
    record(world, ev("deal.created", day(2), deal_id="D9", owner_id="r1"))
    waiting = held(world, "deal", "D9")
    assert waiting.pending == {}
    [reason] = waiting.dropped.values()
    assert "earlier than this deal's creation" in reason
    assert state(world, "deal", "D9").stage == "prospecting"


def test_held_event_past_its_time_is_dropped(world: SalesLedger) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    early = ev("deal.stage_changed", day(2), deal_id="D9", stage="proposal")
    assert world.record([early], tenant=TENANT, now=start) == [Outcome(early["id"], "held")]
    world.record([ev("deal.created", day(1), deal_id="D9", owner_id="r1")], tenant=TENANT,
                 now=start + HOLD_FOR + timedelta(seconds=1))
    assert "waited longer than" in held(world, "deal", "D9").dropped[early["id"]]
    assert state(world, "deal", "D9").stage == "prospecting"


def test_refuse_mode_refuses_an_unknown_subject_at_once(world: SalesLedger) -> None:
    assert_refused(world, ev("deal.won", day(1), deal_id="NOPE"), field="data.deal_id",
                   status=422)
    assert held(world, "deal", "NOPE") is None


def test_events_held_too_long_are_dropped_by_the_sweep_and_may_be_sent_again(
        world: SalesLedger) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    early = ev("deal.stage_changed", day(2), deal_id="D9", stage="proposal")
    world.record([early], tenant=TENANT, now=start)
    assert world.drop_expired(TENANT, ["deal/D9"], now=start + HOLD_FOR) == 0  # not yet
    later = start + HOLD_FOR + timedelta(seconds=1)
    assert world.drop_expired(TENANT, ["deal/D9"], now=later) == 1
    assert world.drop_expired(TENANT, ["deal/D9"], now=later) == 0  # dropped once
    assert "waited longer than 7 days" in held(world, "deal", "D9").dropped[early["id"]]
    # sent again, it waits anew, and is applied when its deal comes
    assert world.record([early], tenant=TENANT, now=later) == [Outcome(early["id"], "held")]
    world.record([ev("deal.created", day(1), deal_id="D9", owner_id="r1")], tenant=TENANT,
                 now=later)
    assert state(world, "deal", "D9").stage == "proposal"


@pytest.mark.parametrize("a, b, order", [
    ("2017-03-01T10:00:00+08:00", "2017-03-01T10:00:00+08:00", 0),
    ("2017-03-01T10:00:01+08:00", "2017-03-01T10:00:00+08:00", 1),
    ("2017-03-01T10:00:00+08:00", "2017-03-01T10:00:00.500000+08:00", -1),
    ("2017-03-01T02:00:00+00:00", "2017-03-01T10:00:00+08:00", 0),  # one instant, two zones
    ("2017-03-01T09:30:00+07:00", "2017-03-01T10:00:00+08:00", 1),
])
def test_instants_compare_across_offsets_and_precisions(a: str, b: str, order: int) -> None:
    assert compare_instants(a, b) == order
    assert compare_instants(b, a) == -order
