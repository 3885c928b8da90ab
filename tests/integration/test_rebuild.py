"""Rebuilding every projection from offset zero gives byte-identical answers to the
live ones: every GET endpoint of the API, every value of its enumerated parameters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.broker import free_port
from services.processes import is_healthy, spawn
from tests.conftest import LoadedStack, Stack, _forget_redis, wait_until
from tests.routes import assert_same_answers

pytestmark = pytest.mark.integration

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
            compared = assert_same_answers(live, rebuilt)
        print(f"{compared} answers compared")
        return compared
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(15)
        _forget_redis(stack.env["REDIS_URL"], rebuilt_prefix)


def test_a_rebuild_from_offset_zero_answers_byte_for_byte_like_the_live_projections(
        year_stack: LoadedStack, tmp_path: Path) -> None:
    answers_like_a_rebuild(year_stack.stack, len(year_stack.events), tmp_path)
