"""The durable outbox of alert deliveries, in the event store's own database.

Every `Dispatch` is written here, keyed by its idempotency key, before anyone tries to send
it: a second write of the same key (a replay, a restart) changes nothing. A row is
`pending` until sent (`sent`) or given up (`dead`); each attempt is counted, with its error
and the time of the next one, and the attempt is recorded *before* the send, so an alerter
killed mid-send retries after its backoff with the same idempotency key, never at once in a
loop. Digest rows of one recipient and channel are claimed together under a `batch` key
before their one message is sent, so a retry after a crash sends the same set again.

PostgreSQL: a table in DATABASE_URL's schema (one backup covers events and deliveries).
Embedded (SQLite): a table in the event store's SQLite file, for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from alerts.planning import Dispatch
from services.settings import Settings

TABLE = "salespulse_alert_outbox"
COLUMNS = ("key", "tenant", "transition_id", "alert_id", "kind", "recipient", "channel",
           "mode", "level", "reached_at", "deliver_at", "transition", "state", "attempts",
           "next_attempt_at", "last_error", "batch", "created_at", "sent_at")
INTEGERS = ("level", "attempts")


def stamp(moment: datetime) -> str:
    """UTC, fixed width: stored as text so the two databases order and compare alike."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    key: str
    tenant: str
    transition_id: str
    alert_id: str
    kind: str
    recipient: str
    channel: str
    mode: str
    level: int
    transition: dict[str, Any]
    attempts: int
    batch: str | None


def _row(raw: dict[str, Any]) -> Row:
    return Row(raw["key"], raw["tenant"], raw["transition_id"], raw["alert_id"], raw["kind"],
               raw["recipient"], raw["channel"], raw["mode"], int(raw["level"]),
               orjson.loads(raw["transition"]), int(raw["attempts"]), raw["batch"])


class Outbox:
    """The outbox over one connection, used from a worker thread (the calls are short)."""

    def __init__(self, settings: Settings) -> None:
        env = settings.event_store_env()
        self.postgres = env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
        self._lock = threading.Lock()
        self._conn: Any = None
        if self.postgres:
            self._conninfo = psycopg.conninfo.make_conninfo(
                dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"],
                port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                password=env["POSTGRES_PASSWORD"], connect_timeout=5)
            self._schema = env.get("POSTGRES_SCHEMA", "public")
            self.table = f'"{self._schema}".{TABLE}'
        else:
            self._path = env["SQLITE_DBNAME"]
            self.table = TABLE
        self.mark = "%s" if self.postgres else "?"

    def where(self) -> str:
        return (f"PostgreSQL table {self.table}" if self.postgres
                else f"SQLite table {TABLE} in {self._path}")

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> Any:
        conn: Any
        if self.postgres:
            conn = psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self._schema)))
        else:
            conn = sqlite3.connect(self._path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
        columns = ", ".join(f"{c} {'INTEGER' if c in INTEGERS else 'TEXT'}"
                            + (" PRIMARY KEY" if c == "key" else "") for c in COLUMNS)
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_due ON {self.table} "
                         "(state, next_attempt_at)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_alert ON {self.table} "
                         "(tenant, alert_id)")
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass  # another alerter created it at the same moment
        return conn

    def _run(self, sql: str, params: Sequence[Any] = (), many: bool = False
             ) -> list[dict[str, Any]]:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            sql = sql.format(table=self.table, m=self.mark)
            try:
                if many:
                    if self.postgres:
                        with self._conn.cursor() as cursor, self._conn.transaction():
                            cursor.executemany(sql, params)
                    else:
                        self._conn.execute("BEGIN IMMEDIATE")
                        try:
                            self._conn.executemany(sql, params)
                            self._conn.execute("COMMIT")
                        except BaseException:
                            self._conn.execute("ROLLBACK")
                            raise
                    return []
                cursor = self._conn.execute(sql, tuple(params))
                rows = cursor.fetchall() if cursor.description else []
                return [dict(r) for r in rows]
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self._conn = None  # reconnect next time: PostgreSQL restarted
                raise

    async def call(self, sql: str, params: Sequence[Any] = (), many: bool = False
                   ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._run, sql, params, many)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writes ---------------------------------------------------------------------------

    async def add(self, planned: Iterable[tuple[Dispatch, dict[str, Any], datetime]],
                  now: datetime) -> None:
        """Write dispatches (each with its transition's JSON and the moment its level was
        reached); a key already written is left as it is."""
        values = [(d.idempotency_key, d.tenant, d.transition_id, body["alert"]["id"],
                   body["kind"], d.recipient_id, d.channel_id, d.mode, d.level,
                   stamp(reached), stamp(d.deliver_at), orjson.dumps(body).decode(),
                   "pending", 0, stamp(d.deliver_at), None, None, stamp(now), None)
                  for d, body, reached in planned]
        if values:
            await self.call(f"INSERT INTO {{table}} ({', '.join(COLUMNS)}) VALUES "
                            f"({', '.join(['{m}'] * len(COLUMNS))}) "
                            "ON CONFLICT (key) DO NOTHING", values, many=True)

    async def attempt(self, keys: Sequence[str], retry_at: datetime, batch: str | None = None
                      ) -> None:
        """Count an attempt before making it; until it succeeds the row is next due at
        `retry_at` (a crash mid-send retries then, with the same key)."""
        marks = ", ".join(["{m}"] * len(keys))
        await self.call(f"UPDATE {{table}} SET attempts = attempts + 1, next_attempt_at = {{m}}"
                        f", batch = COALESCE(batch, {{m}}) WHERE key IN ({marks})",
                        (stamp(retry_at), batch, *keys))

    async def sent(self, keys: Sequence[str], now: datetime) -> None:
        marks = ", ".join(["{m}"] * len(keys))
        await self.call(f"UPDATE {{table}} SET state = 'sent', sent_at = {{m}}, "
                        f"last_error = NULL WHERE key IN ({marks})", (stamp(now), *keys))

    async def failed(self, keys: Sequence[str], error: str, *, dead: bool) -> None:
        marks = ", ".join(["{m}"] * len(keys))
        await self.call(f"UPDATE {{table}} SET last_error = {{m}}"
                        f"{', state = {m}' if dead else ''} WHERE key IN ({marks})",
                        (error[:1000], *(("dead",) if dead else ()), *keys))

    # -- reads ----------------------------------------------------------------------------

    async def due(self, now: datetime, limit: int = 200) -> list[Row]:
        rows = await self.call("SELECT * FROM {table} WHERE state = 'pending' AND "
                               "next_attempt_at <= {m} ORDER BY next_attempt_at, key "
                               "LIMIT {m}", (stamp(now), limit))
        return [_row(r) for r in rows]

    async def next_due(self) -> datetime | None:
        rows = await self.call("SELECT MIN(next_attempt_at) AS at FROM {table} "
                               "WHERE state = 'pending'")
        return unstamp(rows[0]["at"]) if rows and rows[0]["at"] else None

    async def interruptions(self, tenant: str, since: datetime) -> dict[str, int]:
        """Per recipient: transitions sent alone (not in a digest) since `since`."""
        rows = await self.call("SELECT recipient, COUNT(DISTINCT transition_id) AS n "
                               "FROM {table} WHERE tenant = {m} AND mode = 'now' AND "
                               "kind IN ('opened', 'escalated') AND deliver_at >= {m} "
                               "GROUP BY recipient", (tenant, stamp(since)))
        return {r["recipient"]: int(r["n"]) for r in rows}

    async def told(self, tenant: str, alert_id: str) -> list[tuple[str, str]]:
        """The (recipient, channel) pairs told of an alert's opening or escalation."""
        rows = await self.call("SELECT DISTINCT recipient, channel FROM {table} WHERE "
                               "tenant = {m} AND alert_id = {m} AND "
                               "kind IN ('opened', 'escalated') ORDER BY recipient, channel",
                               (tenant, alert_id))
        return [(r["recipient"], r["channel"]) for r in rows]

    async def ladder(self) -> dict[tuple[str, str], tuple[int, datetime]]:
        """Per (tenant, alert) told: the highest level reached and when (a restart's
        escalation ladder)."""
        rows = await self.call("SELECT tenant, alert_id, level, MAX(reached_at) AS at "
                               "FROM {table} WHERE kind IN ('opened', 'escalated') "
                               "GROUP BY tenant, alert_id, level")
        out: dict[tuple[str, str], tuple[int, datetime]] = {}
        for r in rows:
            key = (r["tenant"], r["alert_id"])
            if key not in out or int(r["level"]) > out[key][0]:
                out[key] = (int(r["level"]), unstamp(r["at"]))
        return out

    async def deliveries(self, tenant: str, alert_id: str) -> list[dict[str, Any]]:
        """Who was told of an alert, through which channel, when, and how it went
        (docs/ALERTS.md, "Deliveries"): `delivered`, `pending` (retrying) or `failed`."""
        rows = await self.call("SELECT * FROM {table} WHERE tenant = {m} AND alert_id = {m} "
                               "ORDER BY created_at, key", (tenant, alert_id))
        outcome = {"sent": "delivered", "dead": "failed", "pending": "pending"}
        return [{"recipient": r["recipient"], "channel": r["channel"], "kind": r["kind"],
                 "mode": r["mode"], "level": int(r["level"]),
                 "at": unstamp(r["sent_at"] or r["deliver_at"]).isoformat(),
                 "outcome": outcome[r["state"]], "attempts": int(r["attempts"]),
                 "error": r["last_error"]} for r in rows]

    async def rows(self, tenant: str) -> list[dict[str, Any]]:
        """Every delivery of a tenant as stored, oldest first (history, tests)."""
        return await self.call("SELECT * FROM {table} WHERE tenant = {m} "
                               "ORDER BY created_at, key", (tenant,))


def batch_key(keys: Iterable[str]) -> str:
    """One digest message's idempotency key: from the rows it carries."""
    return hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()[:32]
