"""The client against the real stack: history sent through it, across an API restart, gives
the same funnel as the independent computation; refusals come back as `Refused`."""

from __future__ import annotations

import threading

import pytest

from salespulse_client import Client, Refused, SendResult
from services.processes import is_healthy
from tests import oracle
from tests.conftest import Stack, wait_until
from tests.history import simulated
from tests.integration.test_event_path import STAGES, comparable

pytestmark = pytest.mark.integration


def test_history_sent_through_the_client_survives_an_api_restart(stack: Stack) -> None:
    events = simulated(seed=12, days=45)
    with Client(stack.url, api_key=stack.admin_key, retries=12, backoff=0.25) as sp:
        sp.send_many(events[:500], batch_size=250)
        stack.kill("api")
        sent: list[SendResult] = []
        sender = threading.Thread(target=lambda: sent.append(
            sp.send_many(events[500:], batch_size=250)))
        sender.start()
        wait_until(lambda: sp._retried > 0, timeout=30, message="the client to retry")
        stack.start("api")
        sender.join(120)
        assert sent, "the client gave up"
        assert sent[0].accepted + sent[0].duplicate == len(events) - 500
        assert sent[0].retries > 0
        wait_until(lambda: is_healthy(stack.url), message="the API")

        expected = comparable(oracle.funnel(events, stages=STAGES, filters={}))
        wait_until(lambda: comparable(sp.funnel()) == expected, timeout=120,
                   message="the funnel to equal the independent computation")
        assert comparable(sp.breakdown("team")) == \
            comparable(oracle.breakdown(events, by="team", stages=STAGES, filters={}))

        with pytest.raises(Refused) as refused:
            sp.send_many([{"id": "x-1", "type": "deal.won", "occurred_at": "2017-03-01",
                           "data": {"deal_id": "no-such-deal"}}], unknown="refuse")
        assert refused.value.errors[0]["index"] == 0
