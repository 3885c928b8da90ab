"""Order of arrival never changes a figure, through the real stack (CONTRACT.md, "Order
of arrival"; issue #23).

The simulated year that `year_stack` received sorted by business time is sent to a second
stack shuffled whole and cut into batches, as unordered webhook senders deliver it: most
events arrive before something they need (their deal, its customer, a rep's join) and are
held, then applied when it comes. Once everything has arrived, every GET endpoint answers
byte for byte as the sorted stack does at a fixed `as_of`, and so does a rebuild of the
shuffled topic from offset zero.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import LoadedStack, Stack, _projected, running_stack, wait_until
from tests.integration.test_rebuild import answers_like_a_rebuild
from tests.routes import projection_requests

pytestmark = pytest.mark.integration
SEED = 2026


def _stored(stack: Stack) -> int:
    """How many events the stack's event store holds (held and released ones included)."""
    url, _, schema = stack.env["DATABASE_URL"].partition("?schema=")
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {schema}.salespulse_events").fetchone()
    return int(row[0]) if row else 0


def test_a_shuffled_year_answers_every_view_like_the_sorted_one(
        year_stack: LoadedStack, stack: Stack, tmp_path: Path) -> None:
    # The alerter is not what this compares (tests/unit/test_alert_arrival.py is), and a whole
    # year shuffled keeps it re-judging the past for minutes, deaf to a polite stop.
    stack.kill("alerter")
    shuffled = list(year_stack.events)
    random.Random(SEED).shuffle(shuffled)
    result = stack.post(shuffled, batch_size=700)
    assert result.held > len(shuffled) / 10, result  # the shuffle made senders early
    assert result.accepted + result.held == len(shuffled), result

    stored = _stored(stack)
    wait_until(lambda: _projected(stack, stored), timeout=240,
               message="every stored event to reach the read models")
    with stack.client() as client:
        waiting = client.get("/v1/events/pending").json()
    assert (waiting["pending"], waiting["dropped"]) == (0, 0), waiting

    with year_stack.stack.client() as sorted_api, stack.client() as shuffled_api:
        requests = projection_requests(sorted_api.get("/openapi.json").json())
        assert len(requests) > 50
        for path, params in requests:
            expected = sorted_api.get(path, params=params)
            assert expected.status_code == 200, (path, params, expected.text)
            got = shuffled_api.get(path, params=params)
            assert got.content == expected.content, (path, params, got.text[:400])
    print(f"\n{len(shuffled)} events, {result.held} held on arrival, "
          f"{len(requests)} answers compared")
    # and a rebuild of the shuffled topic from offset zero answers as the live projections
    answers_like_a_rebuild(stack, stored, tmp_path)


def test_an_interactive_sender_can_have_unknown_ids_refused(stack: Stack) -> None:
    event: dict[str, Any] = {"id": "e-typo", "type": "deal.stage_changed",
                             "occurred_at": "2017-03-01T10:00:00",
                             "data": {"deal_id": "D-TYPO", "stage": "proposal"}}
    with stack.client() as client:
        refused = client.post("/v1/events", params={"unknown": "refuse"}, json=event)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "data.deal_id"
        held = client.post("/v1/events", json=event)
        assert held.json() == {"id": "e-typo", "status": "held"}
        wait_until(lambda: client.get("/v1/events/pending").json()["pending"] == 1,
                   message="the held event to be listed")
        [subject] = client.get("/v1/events/pending").json()["subjects"]
        assert subject["waiting_for"] == "deal/D-TYPO"
        assert subject["events"][0]["reason"] == "unknown deal 'D-TYPO'"


def test_an_event_held_too_long_is_dropped_and_listed_with_its_reason(
        broker: Any, pg_schema: str, containers: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLD_DAYS", str(1 / 86400))  # a second
    monkeypatch.setenv("HOLD_SWEEP_SECONDS", "0.5")
    event = {"id": "e-orphan", "type": "deal.won", "occurred_at": "2017-03-01T10:00:00",
             "data": {"deal_id": "D-NEVER"}}
    with running_stack(broker, pg_schema, containers["redis"], tmp_path) as stack, \
            stack.client() as client:
        assert client.post("/v1/events", json=event).json()["status"] == "held"
        listed = wait_until(lambda: (p := client.get("/v1/events/pending").json())["dropped"]
                            and p, timeout=60, message="the expired hold to be dropped")
        assert listed["pending"] == 0
        [dropped] = listed["dropped_events"]
        assert (dropped["id"], dropped["waiting_for"]) == ("e-orphan", "deal/D-NEVER")
        assert "waited longer than" in dropped["reason"]
