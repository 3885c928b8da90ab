"""Refused events never reach Kafka: the events topic holds exactly what the API accepted.

A seeded mix of batches goes to the real stack: simulated history cut into batches, some
spoiled by one bad event (and resent fixed, as a client would), some resent whole
(duplicates). The events topic must then hold each accepted event once, and nothing else.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.simulate.world import simulate
from tests.conftest import Stack, wait_until
from tests.integration.test_event_path import read_topic

pytestmark = pytest.mark.integration

START = datetime(2017, 1, 1, tzinfo=UTC)
SEED = 23


def _bad_event(rng: random.Random, n: int, batch: list[dict[str, Any]]) -> Any:
    """One event the ledger refuses, whatever was stored before."""
    at = batch[-1]["occurred_at"]
    deal = {"id": f"bad-{n}", "type": "deal.stage_changed", "occurred_at": at}
    return rng.choice([
        {**deal, "data": {"deal_id": "D-NOWHERE", "stage": "proposal"}},  # unknown subject
        {**deal, "type": "deal.amount_changed", "data": {"deal_id": "D-X", "amount": "-5"}},
        {**deal, "type": "deal.teleported", "data": {"deal_id": "D-X"}},
        {**deal, "occurred_at": "yesterday", "data": {"deal_id": "D-X", "stage": "proposal"}},
        {**deal, "tenant": "globex", "data": {"deal_id": "D-X", "stage": "proposal"}},
        {**deal, "type": "customer.created", "data": {}},
        {**deal, "type": "payment.received",
         "data": {"payment_id": "P-X", "order_id": "O-NOWHERE", "amount": "1"}},
        [deal],  # not an object
    ])


def mixed_batches(seed: int) -> list[list[Any]]:
    rng = random.Random(seed)
    events = list(simulate(seed, START, START + timedelta(days=20)))
    batches: list[list[Any]] = []
    while events:
        size = rng.randint(1, 30)
        batch, events = events[:size], events[size:]
        if rng.random() < 0.4:
            spoiled = list(batch)
            spoiled.insert(rng.randint(0, len(batch)), _bad_event(rng, len(batches), batch))
            batches.append(spoiled)
        batches.append(batch)
        if rng.random() < 0.2:
            batches.append(rng.choice(batches))  # a retry: duplicates, or refused again
    return batches


def test_the_events_topic_holds_exactly_the_accepted_events_once(stack: Stack,
                                                                 broker: Any) -> None:
    accepted: list[str] = []
    answers: Counter[int] = Counter()
    with stack.client() as client:
        for batch in mixed_batches(SEED):
            # unknown ids refused, not held: this test counts refusals
            response = client.post("/v1/events/batch", json=batch,
                                   params={"unknown": "refuse"})
            answers[response.status_code] += 1
            assert response.status_code in (202, 409, 422), response.text
            if response.status_code == 202:
                accepted += [r["id"] for r in response.json()["results"]
                             if r["status"] == "accepted"]
    assert answers[202] and answers[409] + answers[422], answers  # the mix had both
    assert len(set(accepted)) == len(accepted)

    topic = stack.env["EVENTS_TOPIC"]
    wait_until(lambda: len(read_topic(broker.bootstrap_servers, topic)) >= len(accepted),
               timeout=120, message="the relay to publish every accepted event")
    published = Counter(read_topic(broker.bootstrap_servers, topic))
    print(f"\nbatches answered {dict(answers)}; {len(accepted)} events accepted, "
          f"{sum(published.values())} published")
    assert published == Counter(accepted)  # each accepted event once, nothing refused
