"""The alert settings log on SQLite: routing kept whole, actions in order, a one-tap link
spent once even by two writers at the same moment; Redis's user fields derived from the
actions; the one-tap page's language from Accept-Language."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.alerter.routing_store import action, user_fields
from services.alerter.settings_log import AlertActions, AlertRouting, LinkSpent, open_log
from services.api.act_page import language
from services.settings import Settings

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=None, data_dir=tmp_path)


def test_the_log_lives_beside_the_ledgers_file_not_in_it(tmp_path: Path) -> None:
    log = open_log(settings(tmp_path))
    try:
        log.set_routing("acme", {"channels": []}, "key-1", AT)
    finally:
        log.close()
    assert (tmp_path / "events-alertsettings.sqlite").exists()


def test_routing_is_kept_whole_with_who_set_it(tmp_path: Path) -> None:
    log = open_log(settings(tmp_path))
    try:
        log.set_routing("acme", {"daily_cap": 3}, "key-1", AT)
        log.set_routing("acme", {"daily_cap": 5}, "key-2", AT + timedelta(hours=1))
        routing = log.routing("acme")
        assert routing is not None
        assert (routing.document, routing.set_by) == ({"daily_cap": 5}, "key-2")
        assert log.routing("globex") is None
        log.act("acme", "a1", action("acknowledged", "M1", "api", AT))
        assert {type(a) for a in log.everything()} == {AlertRouting, AlertActions}
        assert [type(a) for a in log.everything(routing_only=True)] == [AlertRouting]
    finally:
        log.close()


def test_a_link_is_spent_once_even_by_two_writers_at_once(tmp_path: Path) -> None:
    first, second = open_log(settings(tmp_path)), open_log(settings(tmp_path))
    tapped = action("acknowledged", "M1", "link", AT, link="nonce-1")
    try:
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(
                lambda log: _try(lambda: log.act("acme", "a1", tapped)), (first, second)))
        assert sorted(outcomes) == ["acted", "spent"]
        with pytest.raises(LinkSpent):
            first.act("acme", "a1", tapped)
        first.act("acme", "a1", action("snoozed", None, "api", AT,
                                       until=AT + timedelta(hours=24)))
        actions = second.actions("acme", "a1")
        assert isinstance(actions, AlertActions)
        assert [(a["kind"], a["via"]) for a in actions.actions] == [
            ("acknowledged", "link"), ("snoozed", "api")]
        assert second.link_spent("acme", "a1", "nonce-1")
        assert not second.link_spent("acme", "a1", "nonce-2")
        assert user_fields(actions.actions) == {
            "acknowledged_at": AT.isoformat(), "acknowledged_by": "M1",
            "snoozed_until": (AT + timedelta(hours=24)).isoformat(),
            "snoozed_at": AT.isoformat()}
    finally:
        first.close()
        second.close()


def _try(act: object) -> str:
    try:
        act()  # type: ignore[operator]
    except LinkSpent:
        return "spent"
    return "acted"


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("en-US,en;q=0.9,zh;q=0.8", "en"),
    ("en;q=0.4, zh-TW;q=0.7", "zh-CN"), ("fr-FR, de", "en"), ("zh;q=bad, en", "en"),
])
def test_the_one_tap_page_speaks_the_readers_language(header: str | None,
                                                      expected: str) -> None:
    assert language(header) == expected


@pytest.mark.usefixtures("own_logging")  # the CLI configures logging
def test_a_backup_restored_on_sqlite_holds_the_same_settings_and_spent_links(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from services.cli import cli

    source, target = tmp_path / "source", tmp_path / "target"
    log = open_log(settings(source))
    try:
        log.set_routing("acme", {"daily_cap": 2}, "key-1", AT)
        log.act("acme", "a1", action("acknowledged", "M1", "link", AT, link="nonce-1"))
    finally:
        log.close()
    file = tmp_path / "backup.jsonl.gz"
    for directory, args in ((source, ["backup", str(file)]), (target, ["restore", str(file)])):
        done = CliRunner().invoke(cli, args, env={"DATA_DIR": str(directory),
                                                  "DATABASE_URL": ""})
        assert done.exit_code == 0, done.output
    restored = open_log(settings(target))
    try:
        routing = restored.routing("acme")
        assert routing is not None and routing.document == {"daily_cap": 2}
        with pytest.raises(LinkSpent):
            restored.act("acme", "a1", action("acknowledged", "M1", "link", AT,
                                               link="nonce-1"))
    finally:
        restored.close()
