"""`salespulse-bench`: the benchmarks' command line, apart from the product's `salespulse`."""

from __future__ import annotations

import typer

from bench.alerter import command as alerter_main
from bench.channels import main as channels_main
from bench.floor import main as floor_main
from bench.pipeline import main as pipeline_main
from bench.query import main as query_main

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Benchmarks of salespulse: they print figures, never assert.")
cli.command("pipeline", help="Measure the event path next to its raw ceilings: ingest, relay, "
            "projection, rebuild, freshness, alert delay.")(pipeline_main)
cli.command("query", help="Query latency under concurrent clients and memory at 10k and 100k "
            "deals.")(query_main)
cli.command("channels", help="Delivery delay per alert channel (WeCom, DingTalk, Feishu, Slack, "
            "Teams, webhook, email) to a local receiver: p50/p99.")(channels_main)
cli.command("floor", help="The authenticated request floor under concurrent clients: latency, "
            "requests/s, API CPU per request.")(floor_main)
cli.command("alerter", help="The alerter's restart to live with and without its checkpoint, "
            "and events/s of one alerter against K sharing the tenants.")(alerter_main)


def main() -> None:
    cli()
