"""The client's batching and retry rules, against a scripted transport (pure logic: the real
API is exercised in tests/integration/test_client_api.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from salespulse_client import Client, Refused, Unavailable, event


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[int]]:
    """A transport that gives `answers` in turn; it records each request's batch size."""
    sizes: list[int] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"null")
        sizes.append(len(body) if isinstance(body, list) else 1)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), sizes


def accepted(n: int) -> httpx.Response:
    return httpx.Response(202, json={"results": [{"id": f"e{i}", "status": "accepted"}
                                                 for i in range(n)]})


def client(transport: httpx.MockTransport) -> Client:
    return Client("http://sp", transport=transport, retries=3, backoff=0)


def events(n: int) -> list[dict]:
    return [event("lead.created", {"lead_id": f"L-{i}"}) for i in range(n)]


def test_events_go_in_batches_of_the_chosen_size_in_order() -> None:
    transport, sizes = scripted(accepted(4), accepted(4), accepted(2))
    result = client(transport).send_many(events(10), batch_size=4)
    assert sizes == [4, 4, 2]
    assert result.accepted == 10 and result.retries == 0


@pytest.mark.parametrize("failure", [
    httpx.Response(503, json={"title": "Event store unavailable"}),
    httpx.Response(429, headers={"Retry-After": "0"}),
    httpx.ConnectError("connection refused"),
])
def test_a_batch_is_retried_after_an_outage_and_the_answer_counts_once(
        failure: httpx.Response | Exception) -> None:
    transport, sizes = scripted(failure, failure, accepted(3))
    result = client(transport).send_many(events(3))
    assert result.accepted == 3 and result.retries == 2
    assert sizes == [3, 3, 3]  # the same batch, resent whole


def test_a_refusal_is_not_retried_and_names_the_event_and_field() -> None:
    problem = {"title": "Invalid events", "errors": [{"index": 1, "field": "data.stage",
                                                      "message": "not a stage"}]}
    transport, sizes = scripted(httpx.Response(422, json=problem))
    with pytest.raises(Refused) as refused:
        client(transport).send_many(events(2))
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == "data.stage"
    assert sizes == [2]


def test_after_every_retry_fails_the_caller_is_told_the_api_is_unavailable() -> None:
    transport, sizes = scripted(*[httpx.ConnectError("down")] * 4)
    with pytest.raises(Unavailable):
        client(transport).send_many(events(1))
    assert len(sizes) == 4  # the first try and three retries


def test_batch_size_is_bounded_by_the_apis_limit() -> None:
    transport, _ = scripted()
    for size in (0, 10_001):
        with pytest.raises(ValueError, match="batch_size"):
            client(transport).send_many(events(1), batch_size=size)


def test_a_new_event_gets_an_id_and_a_time_with_an_offset() -> None:
    one = event("deal.won", {"deal_id": "D-1"}, actor="rep-1")
    assert one["id"] and one["occurred_at"].endswith("+00:00") and one["actor"] == "rep-1"
    assert event("deal.won", {"deal_id": "D-1"})["id"] != one["id"]

