"""A question whose client hung up while it waited for the worker is not computed: the
API must not spend its one worker on answers nobody will read (a dashboard that moved
on, a client that timed out), while clients still waiting queue behind them. And questions
asked without `as_of` name a moment on a step, so dashboards asking alike share them."""

from __future__ import annotations

import socket
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LoadedStack, bearer, wait_until

pytestmark = pytest.mark.integration
ABANDONED = 'salespulse_column_answers_total{source="abandoned"}'


def _abandoned(url: str, token: str) -> float:
    text = httpx.get(f"{url}/metrics", headers=bearer(token), timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(ABANDONED))


def test_questions_of_clients_that_hung_up_are_not_computed(year_stack: LoadedStack) -> None:
    stack = year_stack.stack
    token = stack.env["METRICS_TOKEN"]
    before = _abandoned(stack.url, token)
    address = urlsplit(stack.url)
    # Thirty questions never asked before (each its own moment), each connection closed
    # as soon as its request is sent.
    for minute in range(30):
        with socket.create_connection((address.hostname, address.port)) as sock:
            sock.sendall((f"GET /v1/targets?as_of=2017-06-15T10:{minute:02d}:00%2B08:00 "
                          f"HTTP/1.1\r\nHost: {address.netloc}\r\n"
                          f"Authorization: Bearer {stack.admin_key}\r\n\r\n").encode())
    wait_until(lambda: _abandoned(stack.url, token) > before, timeout=30,
               message="a hung-up question to be dropped, not computed")
    # A client that waits is still answered, the same question included.
    answer = year_stack.get("/v1/targets", as_of="2017-06-15T10:00:00+08:00")
    assert answer["as_of"] == "2017-06-15T10:00:00+08:00" and answer["targets"]


def _answers(url: str, token: str, source: str) -> float:
    text = httpx.get(f"{url}/metrics", headers=bearer(token), timeout=10).text
    name = f'salespulse_column_answers_total{{source="{source}"}}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


def test_questions_asked_without_as_of_within_one_step_share_an_answer(
        year_stack: LoadedStack) -> None:
    stack = year_stack.stack
    token = stack.env["METRICS_TOKEN"]
    for _ in range(3):  # a step may end between two requests: then ask again
        cached = _answers(stack.url, token, "cached")
        first, second = year_stack.get("/v1/targets"), year_stack.get("/v1/targets")
        if first["as_of"] == second["as_of"]:
            break
    moment = datetime.fromisoformat(first["as_of"])
    assert moment.timestamp() % 5 == 0  # AS_OF_STEP_SECONDS
    assert first == second
    assert _answers(stack.url, token, "cached") >= cached + 1
