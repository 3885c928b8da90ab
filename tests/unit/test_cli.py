"""The CLI keeps its promises to scripts: help everywhere, and exit codes that mean one thing
each (0 done, 1 unusable input, 2 usage, 3 partly done, 4 dependency unreachable)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from services.broker import free_port
from services.cli import cli

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("own_logging")
COMMANDS = sorted(typer.main.get_command(cli).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_explains_itself(command: str) -> None:
    done = runner.invoke(cli, [command, "--help"])
    assert done.exit_code == 0, done.output
    assert "Usage" in done.output and "--help" in done.output
    assert typer.main.get_command(cli).commands[command].help  # type: ignore[attr-defined]


def test_an_unknown_option_is_a_usage_error() -> None:
    assert runner.invoke(cli, ["simulate", "--no-such-option"]).exit_code == 2


def test_simulate_writes_a_history_file(tmp_path: Path) -> None:
    out = tmp_path / "history.jsonl"
    done = runner.invoke(cli, ["simulate", "--days", "5", "--out", str(out)])
    assert done.exit_code == 0, done.output
    lines = out.read_text().splitlines()
    assert lines and all(json.loads(line)["type"] for line in lines)


def test_rebuild_without_a_broker_configured_is_unusable_configuration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert runner.invoke(cli, ["rebuild"]).exit_code == 1


def test_rebuild_with_the_broker_unreachable_says_run_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    done = runner.invoke(cli, ["rebuild", "--into", "cli-test-never-written"])
    assert done.exit_code == 4, done.output
