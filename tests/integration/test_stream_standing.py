"""An open `GET /v1/alerts/stream` ends when its credential no longer stands: a revoked key,
a token past its `exp`, a key given another role. Through the real API process (with the
relay, projector and alerter running), PostgreSQL and Redis. The delays are printed, not
asserted: the stream checks its credential every STANDING_CHECK_SECONDS (docs/SECURITY.md)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import orjson
import pytest

from tests.conftest import Stack, bearer, wait_until

pytestmark = pytest.mark.integration


@dataclass
class OpenStream:
    """A stream read in a thread until the server ends it."""

    url: str
    credential: str
    status: int | None = None
    events: list[tuple[str, str]] = field(default_factory=list)
    ended_at: float | None = None
    opened: threading.Event = field(default_factory=threading.Event)

    def start(self) -> OpenStream:
        threading.Thread(target=self._read, daemon=True).start()
        assert self.opened.wait(30), "the stream did not open"
        assert self.status == 200, self.status
        return self

    def _read(self) -> None:
        kind = "message"
        try:
            with httpx.Client(base_url=self.url, timeout=httpx.Timeout(10, read=120)) as client, \
                    client.stream("GET", "/v1/alerts/stream",
                                  headers=bearer(self.credential)) as answer:
                self.status = answer.status_code
                self.opened.set()
                for line in answer.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        self.events.append((kind, line.split(":", 1)[1].strip()))
        finally:
            self.ended_at = time.monotonic()
            self.opened.set()

    def ended_because(self) -> str:
        wait_until(lambda: self.ended_at is not None, timeout=30,
                   message="the stream to end")
        kind, data = self.events[-1]
        assert kind == "end", self.events
        return str(orjson.loads(data)["reason"])


def _delay(stream: OpenStream, since: float, what: str) -> None:
    assert stream.ended_at is not None
    print(f"stream ended {stream.ended_at - since:.2f} s after {what}")  # noqa: T201


def test_open_streams_end_when_their_credential_is_revoked_expires_or_changes(
        stack: Stack) -> None:
    with stack.client() as admin:
        keys: dict[str, Any] = {}
        for name, scope in (("revoked", {"role": "rep", "rep_id": "R-1"}),
                            ("rescoped", {"role": "rep", "rep_id": "R-1"}),
                            ("kept", {"role": "manager", "team_id": "T-1"})):
            answer = admin.post("/v1/keys", json={**scope, "name": name})
            assert answer.status_code == 201, answer.text
            keys[name] = answer.json()
        kept = OpenStream(stack.url, keys["kept"]["key"]).start()

        revoked = OpenStream(stack.url, keys["revoked"]["key"]).start()
        at = time.monotonic()
        assert admin.delete(f"/v1/keys/{keys['revoked']['id']}").status_code == 200
        assert revoked.ended_because() == "revoked"
        _delay(revoked, at, "DELETE /v1/keys/{id}")
        with httpx.Client(base_url=stack.url, headers=bearer(keys["revoked"]["key"])) as again:
            assert again.get("/v1/alerts/stream").status_code == 401

        rescoped = OpenStream(stack.url, keys["rescoped"]["key"]).start()
        at = time.monotonic()
        answer = admin.patch(f"/v1/keys/{keys['rescoped']['id']}",
                             json={"role": "manager", "team_id": "T-2"})
        assert answer.status_code == 200, answer.text
        assert rescoped.ended_because() == "changed"
        _delay(rescoped, at, "PATCH /v1/keys/{id} (rep -> manager)")
        with httpx.Client(base_url=stack.url, headers=bearer(keys["rescoped"]["key"])) as again:
            assert again.get("/v1/me").json()["role"] == "manager"

        expires = int(time.time()) + 3
        token = jwt.encode({"sub": "dashboard", "tenant": "default", "role": "manager",
                            "team_id": "T-1", "exp": expires}, stack.env["JWT_SECRET"],
                           algorithm="HS256")
        expiring = OpenStream(stack.url, token).start()
        assert expiring.ended_because() == "expired"
        _delay(expiring, time.monotonic() - (time.time() - expires), "the token's exp")

        # Two revocations and a rescope later, a key that still stands keeps its stream.
        assert kept.ended_at is None
        assert admin.get("/v1/me").status_code == 200
