"""Fixtures on real services: Tansu broker, PostgreSQL, Redis.

PostgreSQL and Redis come from testcontainers where a Docker daemon answers,
else from the local services (127.0.0.1:5432 database `test`, 127.0.0.1:6379).
Every stack gets its own schema, Redis prefix, topics and consumer group, so
tests never see each other's data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from services.broker import TansuBroker, free_port
from services.processes import is_healthy, spawn
from tests.depth import register_profiles

register_profiles()

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A selection that matches no test (`-k`, `-m`, a file of the other kind) is not a
    failure of the suite: exit 0 instead of pytest's 5, saying so."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("no test matched the selection: nothing to run")


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no daemon, no socket, no permission: all mean "fall back"
        return False


@pytest.fixture(scope="session")
def containers() -> Iterator[dict[str, str]]:
    if os.environ.get("SALESPULSE_TEST_LOCAL") or not _docker_answers():
        yield {"postgres": LOCAL_POSTGRES, "redis": LOCAL_REDIS}
        return
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with ExitStack() as stack:
        pg = stack.enter_context(PostgresContainer("postgres:16", driver=None))
        rd = stack.enter_context(RedisContainer("redis:7"))
        yield {"postgres": pg.get_connection_url(),
               "redis": f"redis://{rd.get_container_host_ip()}:{rd.get_exposed_port(6379)}/0"}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as running:
        yield running


@contextmanager
def _fresh_schema(postgres: str) -> Iterator[str]:
    """A DATABASE_URL naming a fresh, empty schema, dropped afterwards."""
    schema = f"sp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres}?schema={schema}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_schema(containers: dict[str, str]) -> Iterator[str]:
    with _fresh_schema(containers["postgres"]) as url:
        yield url


@pytest.fixture
def own_logging() -> Iterator[None]:
    """For tests running commands in-process: a command points the root logger at its
    stderr, which the runner closes after it; put the logging back as it was."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def wait_until(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.2,
               message: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; never a bare sleep."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")


def samples(url: str, name: str) -> float:
    """The sum of a metric's samples (0 when absent) in a Prometheus text exposition."""
    text = httpx.get(url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


@dataclass
class Stack:
    """The salespulse processes (api, relay, projector) as real subprocesses."""

    env: dict[str, str]
    url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # background processes'
    admin_key: str = ""  # tenant `default`; `client()` and `post()` carry it

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.admin_key)

    def key(self, role: str, tenant: str = "default", **scope: str) -> str:
        """A new API key in this stack's store (as `salespulse keys create` makes one)."""
        from services.bootstrap import issue_key
        from services.settings import Settings

        settings = Settings(database_url=self.env["DATABASE_URL"],
                            data_dir=Path(self.env["DATA_DIR"]))
        return issue_key(settings, tenant, role, **scope)  # type: ignore[arg-type]

    COMMANDS = {"relay": ["relay"], "projector": ["projector"], "alerter": ["alerter"],
                "second projector": ["projector"]}  # a second member of the same group

    def start(self, name: str) -> None:
        args = ["api", "--port", self.url.rsplit(":", 1)[1]] if name == "api" else \
            self.COMMANDS[name]
        env = self.env
        if name != "api":
            port = self.metrics_ports.setdefault(name, free_port())
            env = {**env, "METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"}
        self.processes[name] = spawn(args, env, self.log_dir / f"{name}.log")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, sig)
        self._reap(name, sig)

    def _reap(self, name: str, sig: int) -> None:
        """Wait for `name`, signalled `sig`, to exit; SIGKILL it after 15 s, and say so."""
        process = self.processes.pop(name)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # never leave it behind, then say so
            process.wait(15)
            raise AssertionError(f"{name} did not stop within 15 s of signal {sig}") from None

    def stop(self) -> None:
        """Stop every process, even when one of them does not stop cleanly (reported). All
        are told at once, so they shut down together rather than one after another."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        failures = []
        for name in list(self.processes):
            try:
                self._reap(name, signal.SIGTERM)
            except AssertionError as exc:
                failures.append(str(exc))
        assert not failures, failures

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client with `key`'s credential (default: the tenant admin's)."""
        return httpx.Client(base_url=self.url, timeout=60,
                            headers=bearer(key if key is not None else self.admin_key))

    def post(self, events: list[dict[str, Any]], **options: Any) -> Any:
        from services.simulate.feed import post_events

        return post_events(self.url, events, headers=self.headers, **options)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in
                         sorted(self.log_dir.glob("*.log")))


@contextmanager
def running_stack(broker: TansuBroker, database_url: str, redis_url: str,
                  directory: Path) -> Iterator[Stack]:
    """api, relay and projector on their own schema, Redis prefix, topics and group."""
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"test-{run}",
        "EVENTS_TOPIC": f"events-{run}",
        "DEAD_LETTER_TOPIC": f"dlq-{run}",
        "ALERTS_TOPIC": f"alerts-{run}",
        "PROJECTOR_GROUP": f"projector-{run}",
        "DATA_DIR": str(directory),
        "METRICS_TOKEN": f"metrics-{run}",
        "JWT_SECRET": f"jwt-secret-of-test-run-{run}-{uuid.uuid4().hex}",
        "EVENTS_SIGNING_KEY": f"signing-key-of-test-run-{run}-{uuid.uuid4().hex}",
    }
    running = Stack(env, f"http://127.0.0.1:{free_port()}", directory)
    running.admin_key = running.key("admin")
    for name in ("api", "relay", "projector", "alerter"):
        running.start(name)
    try:
        _wait_for_api(running)
        wait_until(lambda: _built(redis_url, env["REDIS_PREFIX"]), timeout=180,
                   message="the projector to have built the read models")
        yield running
    finally:
        running.stop()
        _forget_redis(redis_url, env["REDIS_PREFIX"])


@pytest.fixture
def stack(broker: TansuBroker, pg_schema: str, containers: dict[str, str],
          tmp_path: Path) -> Iterator[Stack]:
    with running_stack(broker, pg_schema, containers["redis"], tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def module_stack(broker: TansuBroker, containers: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the tests of a module that neither need an empty stack nor change what
    another of them reads (refusals, credentials, health): started once for all of them."""
    with _fresh_schema(containers["postgres"]) as url, \
            running_stack(broker, url, containers["redis"],
                          tmp_path_factory.mktemp("module")) as running:
        yield running


@dataclass
class LoadedStack:
    """A stack that has projected a whole simulated year (`events`, see tests/history.py)."""

    stack: Stack
    events: list[dict[str, Any]]

    def get(self, path: str, **params: Any) -> Any:
        with self.stack.client() as client:
            response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def year_stack(broker: TansuBroker, containers: dict[str, str],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedStack]:
    """One stack for the whole session, loaded once with a year of simulated history; tests
    only read from it. Loaded means every event has reached the read models."""
    from tests.history import simulated

    events = simulated()
    with _fresh_schema(containers["postgres"]) as url, \
            running_stack(broker, url, containers["redis"],
                          tmp_path_factory.mktemp("year")) as running:
        result = running.post(events, batch_size=1000)
        assert result.accepted == len(events), result
        loaded = LoadedStack(running, events)
        wait_until(lambda: _projected(running, len(events)), timeout=180,
                   message="every event to reach the read models")
        yield loaded


def _wait_for_api(stack: Stack, attempts: int = 3) -> None:
    """Until the API answers /healthz. A free port can be taken by another process between
    choosing it and binding it: an API that exited is started again on another port."""
    for _ in range(attempts):
        api = stack.processes["api"]
        wait_until(lambda api=api: is_healthy(stack.url) or api.poll() is not None, timeout=90,
                   message=f"the API to be healthy\n{stack.logs()}")
        if api.poll() is None:
            return
        stack.processes.pop("api")
        stack.url = f"http://127.0.0.1:{free_port()}"
        stack.start("api")
    raise AssertionError(f"the API exited {attempts} times:\n{stack.logs()}")


def _projected(stack: Stack, count: int) -> bool:
    from redis import Redis

    client = Redis.from_url(stack.env["REDIS_URL"])
    applied = client.get(f"{stack.env['REDIS_PREFIX']}:default:applied")
    return applied is not None and int(applied) >= count


def _built(url: str, prefix: str) -> bool:
    from redis import Redis

    return bool(Redis.from_url(url).exists(f"{prefix}:built"))


def _forget_redis(url: str, prefix: str) -> None:
    from redis import Redis

    client = Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
