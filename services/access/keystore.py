"""API keys in the event store's own database (PostgreSQL or SQLite), beside the events
they guard: one backup, and no second store to lose. The API reads a key here when its
process has not cached it, or when a revocation was announced since (services/api/auth.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from services.access import keys
from services.access.principal import Principal, Role

TABLE = "salespulse_api_keys"
COLUMNS = ("id", "tenant", "role", "rep_id", "team_id", "name", "rate_limit", "digest",
           "created_at", "revoked_at")


@dataclass(frozen=True)
class KeyRecord:
    id: str
    tenant: str
    role: Role
    rep_id: str | None
    team_id: str | None
    name: str | None
    rate_limit: str | None
    digest: str
    created_at: str
    revoked_at: str | None

    def principal(self) -> Principal:
        return Principal(self.tenant, self.role, self.id, self.rep_id, self.team_id,
                         self.rate_limit)

    def public(self) -> dict[str, Any]:
        """What an admin may see of a key: everything but its digest."""
        return {c: getattr(self, c) for c in COLUMNS if c != "digest"}


class KeyStore:
    def __init__(self, datastore: Any) -> None:
        """`datastore`: the eventsourcing recorder's (`ledger.recorder.datastore`)."""
        self.datastore = datastore
        postgres = isinstance(datastore, PostgresDatastore)
        self.table = f'"{datastore.schema}".{TABLE}' if postgres else TABLE
        self.mark = "%s" if postgres else "?"
        self._ready = threading.Event()

    def _execute(self, sql: str, params: tuple[Any, ...] = (), *, commit: bool = False
                 ) -> list[Any]:
        self._create_table()
        with self.datastore.transaction(commit=commit) as cursor:
            cursor.execute(sql.format(table=self.table, m=self.mark), params)
            return [] if commit else list(cursor.fetchall())

    def _create_table(self) -> None:
        if self._ready.is_set():
            return
        columns = ", ".join(f"{c} TEXT" + (" PRIMARY KEY" if c == "id" else "")
                            + (" NOT NULL" if c in ("tenant", "role", "digest", "created_at")
                               else "") for c in COLUMNS)
        try:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})")
        except Exception:  # noqa: BLE001 - two processes racing to create it: one won
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT 1 FROM {self.table} WHERE 1 = 0")
        self._ready.set()

    def create(self, tenant: str, role: Role, *, rep_id: str | None = None,
               team_id: str | None = None, name: str | None = None,
               rate_limit: str | None = None) -> tuple[KeyRecord, str]:
        """A new key; the token (`sp_…`) is returned once and never stored."""
        Principal(tenant, role, "new", rep_id, team_id)  # refuses an incomplete scope
        minted = keys.mint()
        record = KeyRecord(minted.id, tenant, role, rep_id, team_id, name, rate_limit,
                           keys.digest(minted.secret), datetime.now(UTC).isoformat(), None)
        values = tuple(getattr(record, c) for c in COLUMNS)
        self._execute(f"INSERT INTO {{table}} ({', '.join(COLUMNS)}) VALUES "
                      f"({', '.join(['{m}'] * len(COLUMNS))})", values, commit=True)
        return record, minted.token

    def get(self, key_id: str) -> KeyRecord | None:
        rows = self._execute(f"SELECT {', '.join(COLUMNS)} FROM {{table}} WHERE id = {{m}}",
                             (key_id,))
        return _record(rows[0]) if rows else None

    def authenticate(self, token: str) -> KeyRecord | None:
        """The key behind `token` if it is well formed, known, matches and is not revoked."""
        parsed = keys.parse(token)
        if parsed is None:
            return None
        record = self.get(parsed[0])
        if record is None or record.revoked_at is not None \
                or not keys.matches(parsed[1], record.digest):
            return None
        return record

    def list(self, tenant: str) -> list[KeyRecord]:
        rows = self._execute(f"SELECT {', '.join(COLUMNS)} FROM {{table}} WHERE tenant = {{m}} "
                             "ORDER BY created_at, id", (tenant,))
        return [_record(r) for r in rows]

    def revoke(self, tenant: str, key_id: str) -> KeyRecord | None:
        """Revoke a key of `tenant` (another tenant's key is not found). Idempotent."""
        now = datetime.now(UTC).isoformat()
        self._execute("UPDATE {table} SET revoked_at = {m} "
                      "WHERE id = {m} AND tenant = {m} AND revoked_at IS NULL",
                      (now, key_id, tenant), commit=True)
        record = self.get(key_id)
        return record if record is not None and record.tenant == tenant else None

    def rescope(self, tenant: str, key_id: str, role: Role, *, rep_id: str | None = None,
                team_id: str | None = None) -> KeyRecord | None:
        """Give a key of `tenant` another role and scope (another tenant's key is not found)."""
        Principal(tenant, role, key_id, rep_id, team_id)  # refuses an incomplete scope
        self._execute("UPDATE {table} SET role = {m}, rep_id = {m}, team_id = {m} "
                      "WHERE id = {m} AND tenant = {m}",
                      (role, rep_id, team_id, key_id, tenant), commit=True)
        record = self.get(key_id)
        return record if record is not None and record.tenant == tenant else None

    def rows(self) -> Sequence[Sequence[str | None]]:
        """Every key as stored, digest included, in creation order: for backups."""
        rows = self._execute(f"SELECT {', '.join(COLUMNS)} FROM {{table}} "
                             "ORDER BY created_at, id")
        return [[row[c] for c in COLUMNS] for row in rows]

    def insert(self, rows: Sequence[Sequence[str | None]]) -> None:
        """Store keys exactly as given (a restore), in one transaction."""
        self._create_table()
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES "
                               f"({', '.join([self.mark] * len(COLUMNS))})",
                               [tuple(row) for row in rows])


def _record(row: Any) -> KeyRecord:
    return KeyRecord(*(row[c] for c in COLUMNS))
