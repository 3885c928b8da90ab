"""Rebuilding every projection from offset zero gives byte-identical answers to the
live ones: every GET endpoint of the API, every value of its enumerated parameters."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.broker import free_port
from services.processes import is_healthy, spawn
from tests.conftest import LoadedStack, Stack, _forget_redis, wait_until

pytestmark = pytest.mark.integration

AS_OF = "2017-12-31T18:00:00+08:00"
# Not projections of the log: the alerter's own state, and static documents.
NOT_PROJECTIONS = ("/v1/alerts", "/v1/deals/stalled", "/v1/customers/at-risk", "/v1/schemas",
                   "/v1/asyncapi.json", "/v1/me", "/v1/keys")


def projection_requests(openapi: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(path, params) for every GET without path parameters, once per combination of its
    enumerated query parameters (`by`, `period`, …), measured at a fixed `as_of`."""
    requests = []
    for path, methods in sorted(openapi["paths"].items()):
        get = methods.get("get")
        if get is None or "{" in path or not path.startswith("/v1/") \
                or path.startswith(NOT_PROJECTIONS):
            continue
        choices: dict[str, list[str]] = {}
        for parameter in get.get("parameters", ()):
            schema = parameter.get("schema", {})
            options = schema.get("enum") or next(
                (s["enum"] for s in schema.get("anyOf", ()) if "enum" in s), None)
            if parameter["in"] == "query" and options:
                choices[parameter["name"]] = [str(o) for o in options]
            if parameter["name"] == "as_of":
                choices["as_of"] = [AS_OF]
        for combination in itertools.product(*choices.values()):
            requests.append((path, dict(zip(choices, combination, strict=True))))
    return requests


def answers_like_a_rebuild(stack: Stack, messages: int, directory: Path) -> int:
    """Rebuild the log into a new Redis prefix (`salespulse rebuild --into`), serve it with a
    second API process, and assert it answers every projection request byte for byte like
    the live API; `messages` is how many the rebuild must have read. Returns the count of
    answers compared."""
    rebuilt_prefix = f"{stack.env['REDIS_PREFIX']}-rebuilt"
    done = subprocess.run([sys.executable, "-m", "services.cli", "rebuild", "--into",
                           rebuilt_prefix], env=stack.env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{messages} messages" in done.stderr, done.stderr
    print(done.stderr.strip().splitlines()[-1])

    port = free_port()
    rebuilt_url = f"http://127.0.0.1:{port}"
    api = spawn(["api", "--port", str(port)], {**stack.env, "REDIS_PREFIX": rebuilt_prefix},
                directory / "rebuilt-api.log")
    try:
        wait_until(lambda: is_healthy(rebuilt_url), timeout=60, message="the rebuilt API")
        with stack.client() as live, httpx.Client(base_url=rebuilt_url, timeout=120,
                                                  headers=stack.headers) as rebuilt:
            requests = projection_requests(live.get("/openapi.json").json())
            assert any(path == "/v1/funnel" for path, _ in requests)
            for path, params in requests:
                answer = live.get(path, params=params)
                assert answer.status_code == 200, (path, params, answer.text)
                assert rebuilt.get(path, params=params).content == answer.content, (path, params)
        print(f"{len(requests)} answers compared")
        return len(requests)
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(15)
        _forget_redis(stack.env["REDIS_URL"], rebuilt_prefix)


def test_a_rebuild_from_offset_zero_answers_byte_for_byte_like_the_live_projections(
        year_stack: LoadedStack, tmp_path: Path) -> None:
    answers_like_a_rebuild(year_stack.stack, len(year_stack.events), tmp_path)
