"""`salespulse`: every process and tool of the service, one subcommand each."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services import keys_cli
from services.process_start import started, until_signalled
from services.processes import is_healthy
from services.settings import Settings
from services.supervisor import Child, Supervisor

# Exit codes every subcommand keeps (scripts rely on them): 0 done; 1 input or
# configuration unusable, nothing done; 2 usage error (typer); 3 done in part (some
# input rejected, reported); 4 a dependency (broker, API, store) unreachable: run again;
# 5 (`up`) a process it supervises kept crashing.
EXIT_UNUSABLE, EXIT_PARTIAL, EXIT_UNAVAILABLE, EXIT_CRASHING = 1, 3, 4, 5

cli = typer.Typer(help="salespulse: real-time sales performance analytics.",
                  no_args_is_help=True, add_completion=False)
console = Console(stderr=True)
cli.add_typer(keys_cli.app, name="keys")
ApiKey = Annotated[str | None, typer.Option(
    envvar="SALESPULSE_API_KEY", help="API key (role ingest or admin) to post with")]


@cli.command()
def api(host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve the ingest and query API."""
    import uvicorn

    from services import logs
    from services.api.app import create_app

    logs.configure(log_level)
    uvicorn.run(create_app(Settings(), settle=True), host=host, port=port, log_level=log_level,
                log_config=None)


@cli.command()
def relay(from_start: Annotated[bool, typer.Option(
        help="Republish the whole log (e.g. into a new, empty broker)")] = False) -> None:
    """Follow the event store's log onto Kafka."""
    from services import bootstrap, signing
    from services.kafka import ensure_topics, producer
    from services.progress import ProgressBoard
    from services.relay import Relay

    settings = started("info")

    async def main(stop: asyncio.Event) -> None:
        ledger = bootstrap.ledger(settings)
        tracking = bootstrap.tracking(ledger)
        await ensure_topics(settings)
        kafka = producer(settings)
        await kafka.start()
        redis = bootstrap.redis(settings)
        runner = Relay(ledger, tracking, kafka, settings.events_topic,
                       signer=signing.signer(settings),
                       dead_letter_topic=settings.dead_letter_topic,
                       progress=ProgressBoard(redis, settings.redis_prefix))
        if from_start:
            runner.position = lambda: 0  # type: ignore[method-assign]
        try:
            await runner.run(stop)
        finally:
            await kafka.stop()
            await redis.aclose()
            ledger.close()

    until_signalled(main)


@cli.command()
def projector(log_level: str = "warning") -> None:
    """Keep the Redis read models up to date from Kafka (a faust worker folding whole fetches)."""
    from services import projector as projector_service
    from services.kafka import ensure_topics

    settings = started(log_level)
    asyncio.run(ensure_topics(settings))
    projector_service.run(settings, loglevel=log_level)


@cli.command()
def alerter(log_level: str = "warning") -> None:
    """Watch the events for alert conditions; deliver alerts (docs/ALERTS.md)."""
    from services.alerter.process import main as alert_service

    settings = started(log_level)
    until_signalled(lambda stop: alert_service(settings, stop))


@cli.command()
def connectors(log_level: str = "warning") -> None:
    """Store contract events produced to INGEST_TOPIC (refusals to INGEST_REFUSED_TOPIC) and
    Salesforce CDC from SALESFORCE_CDC_TOPICS (README, "Connecting a CRM")."""
    from services.connectors.consumer import serve

    settings = started(log_level)
    until_signalled(lambda stop: serve(settings, stop))


@cli.command()
def rebuild(into: Annotated[str | None, typer.Option(
        help="Redis prefix to rebuild into (default: the live one; stop the projector first, "
             "or rebuild into a new prefix and point the API at it)")] = None) -> None:
    """Rebuild every projection from the events topic, offset zero, with progress."""
    from aiokafka.errors import KafkaError
    from rich.progress import Progress

    from services import bootstrap, logs, signing
    from services.readmodels.store import FactStore
    from services.rebuild import Helpers
    from services.rebuild import rebuild as replay

    logs.configure()
    settings = Settings()
    bootstrap_servers = settings.kafka_bootstrap_servers
    if not bootstrap_servers:
        console.print("KAFKA_BOOTSTRAP_SERVERS is required")
        raise typer.Exit(code=EXIT_UNUSABLE)
    store = FactStore(bootstrap.redis(settings), into or settings.redis_prefix)

    async def main() -> None:
        with Progress(console=console) as bar:
            task = bar.add_task("rebuilding", total=None)
            result = await replay(bootstrap_servers, settings.events_topic, store,
                                  signer=signing.signer(settings), helpers=Helpers.of(settings),
                                  on_progress=lambda done, total: bar.update(
                                      task, completed=done, total=total))
        await store.mark_built()
        console.print(f"rebuilt {store.prefix}: {result.messages} messages, {result.applied} "
                      f"applied, {result.unusable} unusable, {result.per_second:,.0f} events/s, "
                      f"{result.processes} process(es)")

    try:
        asyncio.run(main())
    except (KafkaError, OSError, ConnectionError) as exc:
        console.print(f"[red]cannot rebuild[/]: {type(exc).__name__}: {exc}")
        raise typer.Exit(code=EXIT_UNAVAILABLE) from None


@cli.command()
def simulate(
    url: str = "http://127.0.0.1:8000",
    seed: int = 7,
    days: int = 120,
    out: Annotated[Path | None, typer.Option(help="Write JSON lines instead of posting")] = None,
    api_key: ApiKey = None,
    as_crm: Annotated[str | None, typer.Option(
        "--as", help="Post the deals as a CRM sends them: `hubspot` (signed webhooks to "
        "/v1/connectors/hubspot; with an admin key, the tenant's connector is set up)")] = None,
    portal: Annotated[int, typer.Option(help="With --as hubspot: the portalId")] = 62515,
    secret: Annotated[str, typer.Option(help="With --as hubspot: the app secret")] = "demo",
) -> None:
    """Generate a realistic, seeded sales history and post it (or write it to a file)."""
    from services.simulate.feed import post_events, write_jsonl
    from services.simulate.world import simulate as world

    end = datetime.now(UTC)
    events = world(seed, end - timedelta(days=days), end)
    if as_crm is not None:
        from services.simulate.crm import simulate_hubspot

        if as_crm != "hubspot":
            console.print(f"[red]--as {as_crm}[/]: only hubspot is simulated")
            raise typer.Exit(code=2)  # a usage error
        counts = simulate_hubspot(url, list(events), portal, secret, _bearer(api_key))
        console.print(f"posted as HubSpot: {counts}")
        return
    if out:
        console.print(f"wrote {write_jsonl(out, events)} events to {out}")
        return
    result = post_events(url, events, progress=True, headers=_bearer(api_key))
    console.print(f"posted {result}")


@cli.command("import")
def import_history(
    file: Annotated[Path, typer.Argument(
        help="CSV or Excel (.xlsx) export: one deal a row, or a CRM's change log")],
    mapping: Annotated[Path, typer.Option(help="Column-mapping TOML, e.g. "
                                          "deploy/import/crm-opportunities.toml")],
    api: Annotated[str, typer.Option(help="Ingest API to post to")] = "http://127.0.0.1:8000",
    direct: Annotated[bool, typer.Option(help="Write straight into the event store "
                                         "(DATABASE_URL) instead of the API")] = False,
    tenant: Annotated[str | None, typer.Option(
        help="Tenant to import into with --direct (through the API: the key's tenant)")] = None,
    api_key: ApiKey = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    rejected_out: Annotated[Path | None, typer.Option(
        help="Also write the rejected rows (row, column, reason) to this CSV")] = None,
    deals: Annotated[Path | None, typer.Option(
        help="With a change-log mapping: the deals export to join for owner, account and "
        "outcome (Salesforce Opportunity)")] = None,
) -> None:
    """Load history from a spreadsheet or a CRM change log: rows become contract events in
    event-time order.

    Exit codes: 0 all rows imported; 1 file or mapping unusable; 3 some rows rejected
    (listed with row, column and reason; the rest imported); 4 API or store unreachable.
    """
    from services.importer.command import ImportRequest, run

    request = ImportRequest(file, mapping, api, direct, tenant, batch_size,
                            rejected_out=rejected_out, api_key=api_key, deals=deals)
    raise typer.Exit(code=run(request, console))


@cli.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Backup file to write (gzip'ed JSON lines)")],
    overwrite: Annotated[bool, typer.Option(help="Replace FILE if it exists")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=100_000)] = 5000,
) -> None:
    """Write every stored event, in global order, and every API key to one checksummed file.

    Safe while the service runs: events stored after it starts are left out. Exit codes:
    0 done; 1 FILE exists or cannot be written; 4 event store unreachable.
    """
    from services.backup.command import Options
    from services.backup.command import backup as run

    raise typer.Exit(code=run(Options(file, batch_size, overwrite), Settings(), console))


@cli.command()
def restore(
    file: Annotated[Path, typer.Argument(help="Backup file written by `salespulse backup`")],
    batch_size: Annotated[int, typer.Option(min=1, max=100_000,
                                            help="Events per transaction")] = 5000,
) -> None:
    """Load a backup into an EMPTY event store (DATABASE_URL), then verify every event.

    The file is checked whole first: a truncated, corrupted or foreign file writes nothing.
    One transaction per batch; an interrupted restore continues when run again. Then
    republish into a new topic (README, "Backup and restore"). Exit codes: 0 done; 1 file
    unusable, target not empty or verification failed; 4 event store unreachable.
    """
    from services.backup.command import Options
    from services.backup.command import restore as run

    raise typer.Exit(code=run(Options(file, batch_size), Settings(), console))


@cli.command()
def docs(out: Annotated[Path, typer.Option(help="Folder to write into")] = Path("docs/api"),
         ) -> None:
    """Write the OpenAPI (HTTP) and AsyncAPI (Kafka) documents, generated from the code."""
    import json

    from services.api.app import create_app
    from services.asyncapi import document

    settings = Settings()
    out.mkdir(parents=True, exist_ok=True)
    for name, body in (("openapi.json", create_app(settings).openapi()),
                       ("asyncapi.json", document(settings))):
        (out / name).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        console.print(f"wrote {out / name}")


def _wait_healthy(url: str, timeout: float) -> None:
    """Until the API answers. A child that keeps crashing meanwhile is given up on by the
    supervisor, whose signal interrupts this wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_healthy(url):
            return
        time.sleep(0.3)
    raise TimeoutError("the API did not become healthy")


@cli.command()
def up(
    port: int = 8000,
    seed: int = 7,
    history_days: int = 90,
    speed: Annotated[float, typer.Option(help="Simulated seconds per wall second, live")] = 8640,
    keep: Annotated[bool, typer.Option(help="Keep the previous run's events and read models")]
    = False,
) -> None:
    """Run everything on this machine: broker, API, relay, projector, and the demo feed."""
    from services.broker import TansuBroker

    # Started in the background by a script, SIGINT may arrive ignored: take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings()
    run_dir = settings.data_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The relay signs what it publishes, the projector trusts what it signed (a new key each
    # run: a kept topic's old messages are then checked in full, which is only slower).
    env.setdefault("EVENTS_SIGNING_KEY", secrets.token_urlsafe(32))
    broker = None
    if not settings.kafka_bootstrap_servers:
        broker = TansuBroker(log_path=run_dir / "broker.log").start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
    if not keep:
        _reset(settings)
    url = f"http://127.0.0.1:{port}"
    supervisor = Supervisor([
        Child("api", ["api", "--port", str(port)]),
        # A spawned broker starts empty: republish the whole log into it, once; a restarted
        # relay resumes where it got to.
        Child("relay", ["relay", *(["--from-start"] if broker else [])], ["relay"]),
        Child("projector", ["projector"]),
        Child("alerter", ["alerter"]),
    ], env, run_dir, say=console.print,
        # Interrupts the main thread (the feed, or the wait for health) like Ctrl-C.
        gave_up=lambda _loop: os.kill(os.getpid(), signal.SIGTERM)).start()
    try:
        _wait_healthy(url, timeout=60)
        from services.bootstrap import issue_key

        admin = issue_key(settings, settings.default_tenant, "admin", name="salespulse up")
        feed = issue_key(settings, settings.default_tenant, "ingest", name="demo feed")
        # The key rides in the fragment, which browsers never send: the page keeps it for
        # this tab and clears the address bar.
        # soft_wrap: a key split over lines cannot be copied; let the terminal fold it.
        console.print(f"[bold green]salespulse is up[/]  dashboard {url}/dashboard#key={admin}"
                      f"\n  API {url} (Authorization: Bearer {admin})   logs {run_dir}/",
                      soft_wrap=True)
        asyncio.run(_demo_feed(url, seed, history_days, speed, _bearer(feed)))
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        supervisor.stop()
        if broker:
            broker.stop()
        restarts = ", ".join(f"{name} {n}" for name, n in sorted(supervisor.restarts.items()))
        console.print(f"stopped (restarts: {restarts or 'none'})")
    if supervisor.failed is not None:
        console.print(f"[bold red]salespulse up failed: {supervisor.failed}[/]")
        raise typer.Exit(code=EXIT_CRASHING)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _reset(settings: Settings) -> None:
    """A fresh demo: forget the embedded event store and this prefix's read models."""
    from redis import Redis

    if not settings.database_url:
        for suffix in ("", "-wal", "-shm"):
            Path(str(settings.data_dir / "events.sqlite") + suffix).unlink(missing_ok=True)
    client = Redis.from_url(settings.redis_url)
    for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
        client.delete(key)


def _bearer(key: str | None) -> dict[str, str] | None:
    return {"Authorization": f"Bearer {key}"} if key else None


async def _demo_feed(url: str, seed: int, history_days: int, speed: float,
                     headers: dict[str, str] | None) -> None:
    from services.simulate.feed import feed_live, post_events
    from services.simulate.world import simulate as world

    now = datetime.now(UTC)
    history = world(seed, now - timedelta(days=history_days), now)
    result = await asyncio.to_thread(post_events, url, history, progress=True,
                                     headers=headers)
    console.print(f"history posted: {result}; live feed running (Ctrl-C stops everything)")
    await feed_live(url, seed, speed=speed, headers=headers)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
