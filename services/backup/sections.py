"""What a backup holds: one section per table of the store, each read and written in a
stable order through its own adapter. A new table is one more `Section` in `open_sections`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from services import bootstrap
from services.access import keystore
from services.alerter.settings_log import open_log
from services.settings import Settings

Row = list[Any]


class Section(Protocol):
    """One table: its rows in a stable order, out of a store and into another."""

    name: str
    columns: tuple[str, ...]
    assigned: tuple[str, ...]  # columns the target assigns anew on restore: not compared

    def size(self) -> int:
        """An upper bound of the rows `read` yields, for progress bars."""
        ...

    def read(self, batch_size: int) -> Iterator[list[Row]]:
        """Every row as of the call, in batches, in order (later writes are left out)."""
        ...

    def write(self, rows: Sequence[Row]) -> None:
        """Append rows in one transaction: all of them, or none."""
        ...


class EventsSection:
    """The event store's notification log: every stored event in global order.

    `notification_id` is the source's position, kept for reference: a target numbers its
    events itself (densely, where the source may have gaps), so it is not compared.
    """

    name = "events"
    columns: tuple[str, ...] = ("notification_id", "originator_id", "originator_version",
                                "topic", "state")
    assigned: tuple[str, ...] = ("notification_id",)

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder

    def size(self) -> int:
        return self.recorder.max_notification_id() or 0

    def read(self, batch_size: int) -> Iterator[list[Row]]:
        stop = self.recorder.max_notification_id()
        position = 0
        while stop is not None and position < stop:
            batch = self.recorder.select_notifications(position, batch_size, stop=stop,
                                                       inclusive_of_start=False)
            if not batch:
                return
            yield [[n.id, str(n.originator_id), n.originator_version, n.topic,
                    base64.b64encode(n.state).decode("ascii")] for n in batch]
            position = batch[-1].id

    def write(self, rows: Sequence[Row]) -> None:
        # insert_events is one transaction per call on both PostgreSQL and SQLite.
        self.recorder.insert_events([
            StoredEvent(_originator(originator_id), version, topic, base64.b64decode(state))
            for _position, originator_id, version, topic, state in rows])


class AlertSettingsSection(EventsSection):
    """The alert settings log (services/alerter/settings_log.py): routing and people's
    acknowledgements and snoozes, in their own table; a backup made before it had none."""

    name = "alert_settings"


class KeysSection:
    """The API keys, hashed as stored: after a restore the same tokens keep working."""

    name = "keys"
    columns: tuple[str, ...] = keystore.COLUMNS
    assigned: tuple[str, ...] = ()

    def __init__(self, store: keystore.KeyStore) -> None:
        self.store = store

    def size(self) -> int:
        return len(self.store.rows())

    def read(self, batch_size: int) -> Iterator[list[Row]]:
        rows = self.store.rows()  # a few rows per tenant: read at once
        for first in range(0, len(rows), batch_size):
            yield [list(row) for row in rows[first:first + batch_size]]

    def write(self, rows: Sequence[Row]) -> None:
        self.store.insert(rows)


def _originator(value: str) -> UUID | str:
    try:
        return UUID(value)
    except ValueError:
        return value  # a store configured with text originator ids


@contextmanager
def open_sections(settings: Settings) -> Iterator[list[Section]]:
    """Every table a backup holds, in file order, on the store the settings name."""
    ledger = bootstrap.ledger(settings)
    alert_log = open_log(settings)
    try:
        yield [EventsSection(ledger.recorder),
               KeysSection(bootstrap.key_store(ledger)),
               AlertSettingsSection(alert_log.recorder)]
    finally:
        alert_log.close()
        ledger.close()


def describe(settings: Settings) -> str:
    """Where the store is, without credentials: recorded in the backup's header."""
    env = settings.event_store_env()
    if env["PERSISTENCE_MODULE"].endswith("sqlite"):
        return f"sqlite:{env['SQLITE_DBNAME']}"
    schema = env.get("POSTGRES_SCHEMA")
    return (f"postgresql://{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/"
            f"{env['POSTGRES_DBNAME']}" + (f"?schema={schema}" if schema else ""))
