"""The ledger's in-process subject cache (services/eventstore/subjects.py) never changes an answer.

Two `SalesLedger`s on one event store stand for two API processes. Each story runs
on PostgreSQL (one query for a batch's subjects) and on SQLite (one read each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.eventstore.ledger import BatchRefused, SalesLedger, subject_id
from services.settings import Settings
from tests.builders import ev

pytestmark = pytest.mark.integration

TENANT = "acme"
T0 = "2017-03-01T10:00:00"


def day(n: int) -> str:
    return f"2017-03-{1 + n:02d}T10:00:00"


@pytest.fixture(params=["postgres", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'es.db'}").event_store_env()
    return Settings(database_url=request.getfixturevalue("pg_schema")).event_store_env()


@pytest.fixture
def two_processes(store: dict[str, str]) -> Iterator[tuple[SalesLedger, SalesLedger]]:
    first, second = SalesLedger(env=store), SalesLedger(env=store)
    record(first, ev("customer.created", T0, customer_id="C1"),
           ev("deal.created", T0, deal_id="D1", owner_id="r1", customer_id="C1", amount="100"))
    yield first, second
    first.close()
    second.close()


def record(ledger: SalesLedger, *events: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o.id, o.status) for o in ledger.record(list(events), tenant=TENANT)]


def refusal(ledger: SalesLedger, *events: dict[str, Any]) -> tuple[int, list[str]]:
    with pytest.raises(BatchRefused) as refused:
        ledger.record(list(events), tenant=TENANT, unknown="refuse")
    return refused.value.status, [e.message for _, e in refused.value.errors]


def stored_ids(ledger: SalesLedger) -> list[str]:
    notifications = ledger.recorder.select_notifications(0, 10_000, inclusive_of_start=False)
    return [ledger.mapper.to_domain_event(n).envelope["id"] for n in notifications]


def test_a_refused_batch_leaves_nothing_behind_in_the_cache(
        two_processes: tuple[SalesLedger, SalesLedger]) -> None:
    ledger, _ = two_processes
    won = ev("deal.won", day(2), deal_id="D1")
    status, _ = refusal(ledger, won, ev("deal.stage_changed", day(3), deal_id="D9",
                                        stage="proposal"))
    assert status == 422
    # Had the refused batch's win stayed in memory, D1 would be closed, and day 1 too early.
    assert record(ledger, ev("deal.stage_changed", day(1), id="move", deal_id="D1",
                             stage="proposal")) == [("move", "accepted")]
    assert record(ledger, won) == [(won["id"], "accepted")]


def test_a_process_sees_what_another_process_stored_since_it_cached_a_subject(
        two_processes: tuple[SalesLedger, SalesLedger]) -> None:
    first, second = two_processes
    record(second, ev("deal.stage_changed", day(1), deal_id="D1", stage="proposal"))  # cached
    won = ev("deal.won", day(2), deal_id="D1")
    record(first, won)

    status, messages = refusal(second, ev("deal.stage_changed", day(3), deal_id="D1",
                                          stage="negotiation"))
    assert (status, messages) == (409, ["deal 'D1' is won: a closed deal does not change"])
    assert record(second, won) == [(won["id"], "duplicate")]


def test_a_write_between_a_batchs_read_and_its_save_is_decided_again(
        two_processes: tuple[SalesLedger, SalesLedger]) -> None:
    first, second = two_processes
    record(second, ev("activity.logged", day(1), activity_id="A1", deal_id="D1",
                      kind="call", rep_id="r1"))  # D1 cached in `second`
    rival = ev("activity.logged", day(2), id="rival", activity_id="A2", deal_id="D1",
               kind="email", rep_id="r1")
    interleave(second, lambda: record(first, rival))

    mine = ev("deal.stage_changed", day(3), id="mine", deal_id="D1", stage="proposal")
    assert record(second, mine) == [("mine", "accepted")]
    assert stored_ids(second)[-2:] == ["rival", "mine"]
    # Both now build on the stored stream, whichever cached what.
    assert first.subjects.load([D1])[D1].version == second.subjects.load([D1])[D1].version == 4


def test_a_conflicting_write_that_closes_the_deal_turns_acceptance_into_refusal(
        two_processes: tuple[SalesLedger, SalesLedger]) -> None:
    first, second = two_processes
    record(second, ev("deal.stage_changed", day(1), deal_id="D1", stage="proposal"))
    interleave(second, lambda: record(first, ev("deal.lost", day(2), deal_id="D1")))

    status, _ = refusal(second, ev("deal.stage_changed", day(3), deal_id="D1",
                                   stage="negotiation"))
    assert status == 409


D1 = subject_id(TENANT, "deal", "D1")


def interleave(ledger: SalesLedger, write: Callable[[], object]) -> None:
    """Run `write` (another process's) once, between `ledger`'s next read and its save."""
    put = ledger.events.put

    def put_after_a_rival(*args: Any, **kwargs: Any) -> Any:
        ledger.events.put = put  # type: ignore[method-assign]
        write()
        return put(*args, **kwargs)

    ledger.events.put = put_after_a_rival  # type: ignore[method-assign]
