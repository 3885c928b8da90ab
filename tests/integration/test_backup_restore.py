"""A backup restored into an empty database is the same history: the same events with the
same ids in the same order, the same API keys, and, republished into a new topic,
byte-identical projections."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services import bootstrap
from services.broker import TansuBroker
from services.settings import Settings
from tests.conftest import LoadedStack, _fresh_schema, _projected, running_stack, wait_until
from tests.routes import projection_requests

pytestmark = pytest.mark.integration


def salespulse(*args: str, env: dict[str, str]) -> str:
    """Run a CLI command as an operator would; its report (stderr) on success."""
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stderr.split())


def history(settings: Settings) -> list[tuple[Any, ...]]:
    """Every stored event in notification order, with its contract event id."""
    ledger = bootstrap.ledger(settings)
    try:
        stored = ledger.recorder.select_notifications(None, 10_000_000)
        return [(n.originator_id, n.originator_version, n.topic, n.state,
                 ledger.mapper.to_domain_event(n).envelope["id"])  # type: ignore[attr-defined]
                for n in stored]
    finally:
        ledger.close()


def test_a_restored_year_republished_into_a_new_topic_answers_byte_for_byte_like_the_original(
        year_stack: LoadedStack, broker: TansuBroker, containers: dict[str, str],
        tmp_path: Path) -> None:
    original = year_stack.stack
    file = tmp_path / "year.jsonl.gz"
    print(salespulse("backup", str(file), env=original.env))
    with _fresh_schema(containers["postgres"]) as restored_url:
        print(salespulse("restore", str(file), env={**original.env,
                                                     "DATABASE_URL": restored_url}))
        restored_history = history(Settings(database_url=restored_url))
        assert restored_history == history(Settings(database_url=original.env["DATABASE_URL"]))
        assert [event[4] for event in restored_history] == \
            [event["id"] for event in year_stack.events]

        (tmp_path / "restored").mkdir()
        # Its own topic, Redis prefix and consumer group: the relay starts from the first
        # event, as the README's restore procedure says.
        with running_stack(broker, restored_url, containers["redis"],
                           tmp_path / "restored") as restored:
            wait_until(lambda: _projected(restored, len(year_stack.events)), timeout=300,
                       message="the restored history to reach the new read models")
            # The original's admin key was restored with the events: it reads the copy.
            with original.client() as live, restored.client(original.admin_key) as rebuilt:
                # Not projections: the AsyncAPI document names the topics, which differ by
                # design, and the restored stack has issued an admin key of its own.
                requests = [(path, params) for path, params in
                            projection_requests(live.get("/openapi.json").json())
                            if path not in ("/v1/asyncapi.json", "/v1/keys")]
                original_keys = live.get("/v1/keys").json()["keys"]
                assert original_keys
                assert all(key in rebuilt.get("/v1/keys").json()["keys"]
                           for key in original_keys)
                assert any(path == "/v1/funnel" for path, _ in requests)
                for path, params in requests:
                    answer = live.get(path, params=params)
                    assert answer.status_code == 200, (path, params, answer.text)
                    assert rebuilt.get(path, params=params).content == answer.content, \
                        (path, params)
        print(f"{len(requests)} answers compared")


def test_an_embedded_sqlite_store_restores_into_postgresql(pg_schema: str,
                                                          tmp_path: Path) -> None:
    from services.simulate.world import simulate

    embedded = Settings(data_dir=tmp_path / "embedded", database_url=None)
    ledger = bootstrap.ledger(embedded)
    start = datetime(2017, 1, 1, tzinfo=UTC)
    events = list(simulate(3, start, start + timedelta(days=30)))
    for first in range(0, len(events), 1000):
        ledger.record(events[first:first + 1000], tenant="default")
    ledger.close()

    file = tmp_path / "embedded.jsonl.gz"
    env = {**os.environ, "DATA_DIR": str(tmp_path / "embedded"), "DATABASE_URL": ""}
    assert "from sqlite:" in salespulse("backup", str(file), env=env)
    salespulse("restore", str(file), env={**env, "DATABASE_URL": pg_schema})

    restored = history(Settings(database_url=pg_schema))
    assert restored == history(embedded)
    assert [event[4] for event in restored] == [event["id"] for event in events]

