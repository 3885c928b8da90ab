"""`salespulse-bench`, the benchmarks' own command line: every subcommand explains itself."""

from __future__ import annotations

import pytest
import typer.main
from typer.testing import CliRunner

from bench.cli import cli

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(cli).commands)  # type: ignore[attr-defined]


def test_the_benchmarks_are_the_pipeline_queries_floor_alerters_and_channels() -> None:
    assert COMMANDS == ["alerter", "channels", "floor", "pipeline", "query"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bench_subcommand_explains_itself(command: str) -> None:
    done = runner.invoke(cli, [command, "--help"])
    assert done.exit_code == 0, done.output
    assert "Usage" in done.output and "--help" in done.output
    assert typer.main.get_command(cli).commands[command].help  # type: ignore[attr-defined]


def test_the_product_cli_no_longer_carries_the_benchmarks() -> None:
    from services.cli import cli as product

    assert not [name for name in typer.main.get_command(product).commands  # type: ignore[attr-defined]
                if name.startswith("bench")]
