"""Scaled out, the stack answers as the single-process one does (docs/ARCHITECTURE.md,
"Scaling out"; the recipe is docker-compose.yml's).

The same simulated months go to two stacks on the same broker, PostgreSQL and Redis: one
relay, one projector and one API; and one relay, three projectors in one consumer group
(two of the topic's six partitions each) and two API processes on one Redis prefix, the
batches posted to either replica in turn. Once both have applied everything, every GET
route answers byte for byte alike on the single API and on both replicas, and every
projector has folded a share of the log.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest

from services.broker import TansuBroker, free_port
from services.processes import is_healthy, spawn
from services.simulate.feed import post_events
from tests.conftest import (
    Stack,
    _fresh_schema,
    _projected,
    running_stack,
    samples,
    wait_until,
)
from tests.history import simulated
from tests.routes import assert_same_answers

pytestmark = pytest.mark.integration
PARTITIONS = 6
PROJECTORS = 3
APIS = 2
BATCH = 500


def _assignment(stack: Stack, name: str) -> list[int] | None:
    """The partitions `name` was last given by the group (its log), None before any."""
    last = None
    for line in (stack.log_dir / f"{name}.log").read_text().splitlines():
        if '"projector.assigned"' in line:
            last = json.loads(line)["partitions"]
    return last


@contextmanager
def scaled_out(stack: Stack, projectors: int, apis: int) -> Iterator[list[str]]:
    """`projectors` projectors in the stack's consumer group in place of its own, and more
    API processes on its Redis prefix beside its own; yields every API's URL, the stack's
    first. The stack stops them."""
    stack.kill("projector", signal.SIGTERM)  # its successors log their partitions (info)
    for n in range(1, projectors + 1):
        port = stack.metrics_ports.setdefault(f"projector {n}", free_port())
        stack.processes[f"projector {n}"] = spawn(
            ["projector", "--log-level", "info"],
            {**stack.env, "METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"},
            stack.log_dir / f"projector {n}.log")
    urls = [stack.url]
    for n in range(2, apis + 1):
        port = free_port()
        stack.processes[f"api {n}"] = spawn(["api", "--port", str(port)], stack.env,
                                            stack.log_dir / f"api {n}.log")
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        wait_until(partial(is_healthy, url), timeout=90,
                   message=f"the API replica at {url}\n{stack.logs()}")
    names = [f"projector {n}" for n in range(1, projectors + 1)]

    def settled() -> bool:  # the group's last rebalance gave every member its own share
        given = [_assignment(stack, name) for name in names]
        shares = [p for p in given if p]
        return len(shares) == len(names) and \
            sorted(p for share in shares for p in share) == list(range(PARTITIONS))

    wait_until(settled, timeout=90, message=f"{projectors} projectors to share the partitions")
    yield urls


def _projected_by(stack: Stack, name: str) -> float:
    return samples(f"http://127.0.0.1:{stack.metrics_ports[name]}/metrics",
                   "salespulse_projected_events_total")


def test_three_projectors_and_two_api_replicas_answer_like_one_of_each(
        broker: TansuBroker, containers: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PARTITIONS", str(PARTITIONS))  # both stacks' topics
    events = simulated(seed=5, days=120)
    (tmp_path / "single").mkdir()
    (tmp_path / "scaled").mkdir()
    with _fresh_schema(containers["postgres"]) as single_db, \
            _fresh_schema(containers["postgres"]) as scaled_db, \
            running_stack(broker, single_db, containers["redis"], tmp_path / "single") as single, \
            running_stack(broker, scaled_db, containers["redis"], tmp_path / "scaled") as scaled:
        for each in (single, scaled):
            # Not a projection (tests/integration/test_alerts_*.py). Stopped, not killed: it
            # withdraws its progress, or /healthz would call it silent.
            each.kill("alerter", signal.SIGTERM)
        with scaled_out(scaled, PROJECTORS, APIS) as replicas:
            assert single.post(events, batch_size=BATCH).accepted == len(events)
            accepted = 0  # the same batches in the same order, taken in turn by each replica
            for n, start in enumerate(range(0, len(events), BATCH)):
                accepted += post_events(replicas[n % APIS], events[start:start + BATCH],
                                        batch_size=BATCH, headers=scaled.headers).accepted
            assert accepted == len(events)

            for each in (single, scaled):
                wait_until(partial(_projected, each, len(events)), timeout=120,
                           message=f"every event to reach the read models\n{each.logs()}")
            shares = {name: _projected_by(scaled, name) for name in scaled.metrics_ports
                      if name.startswith("projector ")}
            assert len(shares) == PROJECTORS and all(shares.values()), shares
            assert sum(shares.values()) >= len(events), shares

            with single.client() as one, \
                    httpx.Client(base_url=replicas[0], timeout=120, headers=scaled.headers) \
                    as first, \
                    httpx.Client(base_url=replicas[1], timeout=120, headers=scaled.headers) \
                    as second:
                compared = assert_same_answers(one, first, second)
    print(f"\n{len(events)} events; {compared} answers compared on 1 API and {APIS} replicas; "
          f"projected per projector: {sorted(shares.values())}")
