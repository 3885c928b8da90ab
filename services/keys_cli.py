"""`salespulse keys`: API keys straight in the event store's database, for operators (the
first admin key of a tenant has no API to ask). Admins manage the rest through /v1/keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.access.principal import ROLES
from services.settings import Settings

app = typer.Typer(help="Create, list and revoke API keys (stored hashed).",
                  no_args_is_help=True)
console = Console(stderr=True)
EXIT_UNUSABLE, EXIT_UNAVAILABLE = 1, 4  # services/cli.py: the same codes everywhere


def _store():  # type: ignore[no-untyped-def]
    from services import bootstrap

    ledger = bootstrap.ledger(Settings())
    return ledger, bootstrap.key_store(ledger)


@app.command()
def create(
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    tenant: Annotated[str, typer.Option()] = "default",
    rep_id: Annotated[str | None, typer.Option(help="the rep a `rep` key reads")] = None,
    team_id: Annotated[str | None, typer.Option(help="the team a `manager` key reads")] = None,
    name: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    rate_limit: Annotated[str | None, typer.Option(help="e.g. 100/minute")] = None,
) -> None:
    """Print a new key on stdout (only once: it is stored hashed)."""
    ledger, store = _store()
    try:
        record, token = store.create(tenant, role, rep_id=rep_id,  # type: ignore[arg-type]
                                     team_id=team_id, name=name, rate_limit=rate_limit)
    except ValueError as exc:
        console.print(f"[red]cannot create the key[/]: {exc}")
        raise typer.Exit(EXIT_UNUSABLE) from None
    finally:
        ledger.close()
    console.print(f"key {record.id}: tenant {tenant}, role {role}")
    print(token)  # noqa: T201 - the one line a script captures


@app.command("list")
def list_keys(tenant: Annotated[str, typer.Option()] = "default") -> None:
    """The tenant's keys (never their secrets)."""
    ledger, store = _store()
    try:
        records = store.list(tenant)
    finally:
        ledger.close()
    table = Table("id", "role", "rep", "team", "name", "created", "revoked")
    for r in records:
        table.add_row(r.id, r.role, r.rep_id or "", r.team_id or "", r.name or "",
                      r.created_at[:19], (r.revoked_at or "")[:19])
    Console().print(table)


@app.command()
def revoke(key_id: str, tenant: Annotated[str, typer.Option()] = "default") -> None:
    """Revoke a key at once, in every API process (announced through Redis, REDIS_URL).

    Exit codes: 0 revoked and announced; 1 no such key in the tenant; 4 revoked in the
    database but Redis unreachable: API processes that cached the key may accept it for up
    to KEY_CACHE_SECONDS; run the same command again once Redis answers."""
    from redis import Redis
    from redis.exceptions import RedisError

    from services.access.revocation import announce

    settings = Settings()
    ledger, store = _store()
    try:
        record = store.revoke(tenant, key_id)
    finally:
        ledger.close()
    if record is None:
        console.print(f"[red]no key {key_id!r} in tenant {tenant!r}[/]")
        raise typer.Exit(EXIT_UNUSABLE)
    try:
        with Redis.from_url(settings.redis_url, socket_connect_timeout=2,
                            socket_timeout=settings.redis_socket_timeout) as redis:
            announce(redis, settings.redis_prefix)
    except (RedisError, OSError) as exc:
        console.print(f"[red]key {key_id} IS revoked in the database (at {record.revoked_at}), "
                      f"but the revocation could not be announced to the API processes[/]: "
                      f"Redis unreachable ({type(exc).__name__}). One that cached the key may "
                      f"accept it for up to {settings.key_cache_seconds:g} s "
                      "(KEY_CACHE_SECONDS). Run this command again once Redis answers.")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    console.print(f"revoked {key_id} at {record.revoked_at}")
