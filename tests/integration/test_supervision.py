"""`salespulse up` keeps its processes alive: the supervisor it runs, over the real API,
relay and projector (real broker, PostgreSQL, Redis), started again after SIGKILL with the
data still flowing; a child that keeps crashing given up on; and `up` itself exiting 5."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis import Redis

from services.bootstrap import issue_key
from services.broker import TansuBroker, free_port
from services.processes import is_healthy
from services.settings import Settings
from services.supervisor import Child, CrashLoop, RestartPolicy, Supervisor
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def env(broker: TansuBroker, pg_schema: str, containers: dict[str, str],
        tmp_path: Path) -> Iterator[dict[str, str]]:
    run = uuid.uuid4().hex[:8]
    yield {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
           "DATABASE_URL": pg_schema, "REDIS_URL": containers["redis"],
           "REDIS_PREFIX": f"test-{run}", "EVENTS_TOPIC": f"events-{run}",
           "DEAD_LETTER_TOPIC": f"dlq-{run}", "ALERTS_TOPIC": f"alerts-{run}",
           "PROJECTOR_GROUP": f"projector-{run}", "DATA_DIR": str(tmp_path),
           "EVENTS_SIGNING_KEY": f"signing-key-{run}-{uuid.uuid4().hex}"}
    client = Redis.from_url(containers["redis"])
    for key in client.scan_iter(match=f"test-{run}:*", count=1000):
        client.delete(key)


def _journal(directory: Path) -> list[dict[str, Any]]:
    path = directory / "supervisor.log"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] \
        if path.exists() else []


def test_a_killed_relay_or_projector_is_started_again_and_the_data_keeps_flowing(
        env: dict[str, str], tmp_path: Path) -> None:
    from services.simulate.feed import post_events
    from tests.history import simulated

    events = simulated(days=30)
    parts = [events[:len(events) // 3], events[len(events) // 3:2 * len(events) // 3],
             events[2 * len(events) // 3:]]
    admin = issue_key(Settings(database_url=env["DATABASE_URL"], data_dir=tmp_path),
                      "default", "admin")
    url = f"http://127.0.0.1:{free_port()}"
    redis = Redis.from_url(env["REDIS_URL"])
    said: list[str] = []
    supervisor = Supervisor([Child("api", ["api", "--port", url.rsplit(":", 1)[1]]),
                             Child("relay", ["relay"]), Child("projector", ["projector"])],
                            env, tmp_path, say=said.append).start()

    def applied() -> int:
        return int(redis.get(f"{env['REDIS_PREFIX']}:default:applied") or 0)

    try:
        wait_until(lambda: is_healthy(url), timeout=90, message="the API")
        posted = 0
        for part, victim in zip(parts, ("relay", "projector", None), strict=True):
            result = post_events(url, part, headers={"Authorization": f"Bearer {admin}"})
            assert result.accepted == len(part), result
            posted += len(part)
            wait_until(lambda n=posted: applied() == n, timeout=120,
                       message=f"{posted} events projected")
            if victim is None:
                break
            killed = supervisor.processes[victim]
            os.killpg(killed.pid, signal.SIGKILL)
            wait_until(lambda v=victim, k=killed: supervisor.restarts[v] == 1
                       and supervisor.processes[v] is not k
                       and supervisor.processes[v].poll() is None, timeout=30,
                       message=f"{victim} started again")
        # Every event projected once: none lost to the kills, none counted twice.
        assert applied() == len(events)
        assert supervisor.failed is None
        def healthy(worker: str) -> subprocess.CompletedProcess[str] | None:
            checked = subprocess.run([sys.executable, "-m", "services.healthcheck", worker],
                                     env={**env, "HEALTHCHECK_URL": url}, capture_output=True,
                                     text=True, timeout=60, check=False)
            return checked if checked.returncode == 0 else None

        # The compose health check, asking this API. A projector started again reports its
        # partitions once the group gave them back (the killed member's session expires
        # first): until then they are rightly "silent".
        for worker in ("relay", "projector"):
            wait_until(lambda w=worker: healthy(w), timeout=90, interval=1,
                       message=f"the {worker}'s health check to pass")
    finally:
        supervisor.stop()
    journal = _journal(tmp_path)
    exits = [(e["child"], e["code"]) for e in journal if e["event"] == "child.exited"]
    assert exits == [("relay", -signal.SIGKILL), ("projector", -signal.SIGKILL)], journal
    restarted = [(e["child"], e["restarts"]) for e in journal if e["event"] == "child.restarted"]
    assert restarted == [("relay", 1), ("projector", 1)], journal
    assert any("relay exited (by signal SIGKILL)" in line for line in said), said
    print(f"supervision: {len(events)} events in 3 parts, relay and projector SIGKILLed "  # noqa: T201
          f"and started again; {applied()} applied")


def test_a_child_that_keeps_crashing_is_given_up_on_and_said_so(
        env: dict[str, str], tmp_path: Path) -> None:
    given_up: list[CrashLoop] = []
    supervisor = Supervisor(
        [Child("projector", ["projector", "--no-such-option"])], env, tmp_path,
        policy=lambda: RestartPolicy(first_delay=0.1, crashes=5, within=60),
        gave_up=given_up.append).start()
    try:
        wait_until(lambda: supervisor.failed is not None, timeout=120,
                   message="the supervisor to give up")
    finally:
        supervisor.stop()
    failed = supervisor.failed
    assert failed is not None and given_up == [failed]
    assert (failed.name, failed.exits, failed.code) == ("projector", 5, 2)  # 2: usage error
    assert supervisor.restarts["projector"] == 4
    assert "projector exited 5 times within 60 s (last exit code 2)" in str(failed)
    assert str(tmp_path / "projector.log") in str(failed)
    assert [e["event"] for e in _journal(tmp_path)][-1] == "child.given_up"


def test_up_exits_5_when_a_process_keeps_crashing(env: dict[str, str], tmp_path: Path) -> None:
    # The API's port is held by a socket that never answers HTTP: each API started fails
    # to bind and exits, until `up` gives up on it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "up", "--port", str(port)], env=env,
            capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 5, done.stderr[-3000:]
    assert "api exited 5 times within 60 s" in done.stderr, done.stderr[-3000:]
    assert "salespulse up failed" in done.stderr
    given_up = [e for e in _journal(tmp_path) if e["event"] == "child.given_up"]
    assert [e["child"] for e in given_up] == ["api"], _journal(tmp_path)
