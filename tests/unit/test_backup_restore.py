"""`salespulse backup` and `salespulse restore` on the embedded SQLite store: every event
comes back in order, and a store that is not empty, or a file that is not intact, is
refused before anything is written."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.persistence import Notification
from typer.testing import CliRunner

from services import bootstrap
from services.backup.sections import EventsSection
from services.cli import cli
from services.eventstore.ledger import SalesLedger
from services.settings import Settings

runner = CliRunner()
START = datetime(2017, 1, 1, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("own_logging")


def store(directory: Path) -> SalesLedger:
    return bootstrap.ledger(Settings(data_dir=directory, database_url=None))


def stored(directory: Path) -> list[Notification]:
    ledger = store(directory)
    try:
        return list(ledger.recorder.select_notifications(None, 1_000_000))
    finally:
        ledger.close()


def content(notifications: list[Notification]) -> list[tuple[object, ...]]:
    return [(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding twenty simulated days, recorded the way the API records them."""
    from services.simulate.world import simulate

    directory = tmp_path_factory.mktemp("source")
    events = list(simulate(5, START, START + timedelta(days=20)))
    ledger = store(directory)
    for first in range(0, len(events), 500):
        ledger.record(events[first:first + 500], tenant="default")
    ledger.close()
    ADMIN.append(bootstrap.issue_key(Settings(data_dir=directory, database_url=None),
                                     "default", "admin"))
    return directory


ADMIN: list[str] = []  # the source's admin token, issued with the history


def invoke(directory: Path, *args: str) -> tuple[int, str]:
    done = runner.invoke(cli, list(args), env={"DATA_DIR": str(directory), "DATABASE_URL": ""})
    return done.exit_code, done.output


def backed_up(history: Path, tmp_path: Path) -> Path:
    file = tmp_path / "backup.jsonl.gz"
    code, output = invoke(history, "backup", str(file))
    assert code == 0, output
    return file


def test_a_restored_store_holds_every_event_in_the_same_order(history: Path,
                                                             tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    code, output = invoke(tmp_path / "target", "restore", str(file), "--batch-size", "97")
    assert code == 0, output
    original = stored(history)
    assert len(original) > 3 * 97  # several batches
    assert content(stored(tmp_path / "target")) == content(original)
    assert f"restored {len(original)} events" in output


def test_backup_does_not_replace_an_existing_file_unless_told(history: Path,
                                                              tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    assert invoke(history, "backup", str(file))[0] == 1
    assert invoke(history, "backup", str(file), "--overwrite")[0] == 0


def test_a_store_holding_other_events_is_refused_and_left_as_it_was(history: Path,
                                                                     tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    target = tmp_path / "target"
    ledger = store(target)
    ledger.record([{"id": "e-1", "type": "rep.joined", "occurred_at": "2017-01-01T09:00:00",
                    "data": {"rep_id": "R-1", "name": "Li", "team_id": "T-1"}}],
                  tenant="default")
    ledger.close()
    code, output = invoke(target, "restore", str(file))
    assert code == 1
    assert "not empty" in output
    assert len(stored(target)) == 1


def test_a_corrupted_file_writes_nothing(history: Path, tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    lines = gzip.decompress(file.read_bytes()).splitlines(keepends=True)
    file.write_bytes(gzip.compress(b"".join(lines[:-40] + lines[-1:])))
    code, output = invoke(tmp_path / "target", "restore", str(file))
    assert code == 1
    assert "cannot restore" in output
    assert stored(tmp_path / "target") == []


def test_an_interrupted_restore_finishes_when_run_again(history: Path, tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    from services.backup import archive

    target = store(tmp_path / "target")
    EventsSection(target.recorder).write(list(archive.rows(file, "events"))[:300])
    target.close()
    code, output = invoke(tmp_path / "target", "restore", str(file))
    assert code == 0, output
    assert "300 already there" in output
    assert content(stored(tmp_path / "target")) == content(stored(history))


def test_restoring_again_into_the_restored_store_changes_nothing(history: Path,
                                                                 tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    assert invoke(tmp_path / "target", "restore", str(file))[0] == 0
    code, output = invoke(tmp_path / "target", "restore", str(file))
    assert code == 0, output
    assert "nothing to write" in output
    assert content(stored(tmp_path / "target")) == content(stored(history))


def test_an_unreachable_store_is_reported_as_run_again(history: Path, tmp_path: Path) -> None:
    from services.broker import free_port

    file = backed_up(history, tmp_path)
    done = runner.invoke(cli, ["restore", str(file)], env={
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/test"})
    assert done.exit_code == 4, done.output
    assert "run the same restore again" in done.output


def test_api_keys_come_back_and_their_tokens_still_work(history: Path, tmp_path: Path) -> None:
    file = backed_up(history, tmp_path)
    code, output = invoke(tmp_path / "target", "restore", str(file))
    assert code == 0, output
    assert "1 keys" in output
    ledger = store(tmp_path / "target")
    try:
        record = bootstrap.key_store(ledger).authenticate(ADMIN[0])
    finally:
        ledger.close()
    assert record is not None and (record.tenant, record.role) == ("default", "admin")


def test_the_backup_names_its_source_without_credentials() -> None:
    from services.backup.sections import describe

    settings = Settings(database_url="postgresql://sales:s3cret@db.internal:6543/crm?schema=eu")
    assert describe(settings) == "postgresql://db.internal:6543/crm?schema=eu"
