"""Streams and slow clients against the real API process: a bad stream position is a 400
before the stream starts; a body that stops arriving is a 408; a client that goes away
half-way through its body is not an error of the application."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.alerts import STREAM_ID_PATTERN
from tests.conftest import Stack, _wait_for_api, wait_until

pytestmark = pytest.mark.integration

BAD_POSITIONS = st.one_of(
    st.sampled_from(["abc", "", "-", "1-", "-1", "1-2-3", "0x10", " 1", "1.5", "$", ">", "+",
                     "18446744073709551616", "1-18446744073709551616", "１２"]),
    st.text(max_size=30).filter(lambda t: not __import__("re").fullmatch(STREAM_ID_PATTERN, t)))


def test_a_bad_stream_position_is_a_400_problem_before_the_stream_starts(stack: Stack) -> None:
    with stack.client() as client:
        checked = 0

        @settings(max_examples=40, deadline=None, derandomize=True, database=None)
        @given(position=BAD_POSITIONS, where=st.sampled_from(["since", "Last-Event-ID"]))
        def refused(position: str, where: str) -> None:
            nonlocal checked
            if where == "since":
                response = client.get("/v1/alerts/stream", params={"since": position})
            else:
                if not position or position != position.strip() or not all(
                        " " <= c <= "~" for c in position):
                    return  # not a header value the server reads as given (h11 refuses it)
                response = client.get("/v1/alerts/stream", headers={"Last-Event-ID": position})
            assert response.status_code == 400, (position, where, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert where in response.json()["detail"]
            checked += 1

        refused()
        with client.stream("GET", "/v1/alerts/stream", params={"since": "0"}) as good:
            assert good.status_code == 200
    print(f"\n{checked} bad stream positions refused with 400")
    assert checked > 20


def _raw(url: str, request: bytes) -> socket.socket:
    parsed = urlparse(url)
    connection = socket.create_connection((parsed.hostname, parsed.port), timeout=30)
    connection.sendall(request)
    return connection


def _half_a_body(stack: Stack) -> bytes:
    key = stack.headers["Authorization"]
    return (b"POST /v1/events HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Authorization: " + key.encode() + b"\r\nContent-Length: 1000\r\n\r\n"
            b'{"id": "half-')


def _whole_response(connection: socket.socket) -> bytes:
    """Head and body: the body may come in a later segment than the head."""
    answer = b""
    while chunk := connection.recv(4096):
        answer += chunk
        head, ended, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if ended and length and len(body) >= int(length.group(1)):
            break
    return answer


def test_a_body_that_stops_arriving_is_a_408_and_a_client_gone_is_no_error(
        stack: Stack) -> None:
    stack.kill("api")
    stack.env["BODY_READ_TIMEOUT_SECONDS"] = "1"
    stack.start("api")
    _wait_for_api(stack)
    with _raw(stack.url, _half_a_body(stack)) as stalled:
        answer = _whole_response(stalled)  # waits for the server: the read timeout, then 408
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer and b"body-timed-out" in answer
    for _ in range(5):  # gone half-way through the body
        _raw(stack.url, _half_a_body(stack)).close()
    with stack.client() as client:  # still serving
        wait_until(lambda: client.get("/v1/alerts", params={"limit": 1}).status_code == 200)
    time.sleep(1)  # the server notices the closed connections meanwhile (no event to poll)
    log = (stack.log_dir / "api.log").read_text()
    assert "Exception in ASGI application" not in log, log[-3000:]
    assert "ClientDisconnect" not in log, log[-3000:]
