"""Reading many sales subjects at once, from an in-process cache brought up to date.

Loading each aggregate on its own costs a database round trip per subject; a
batch of 1,000 events touches hundreds of subjects. `SubjectReader.load` reads
them all with one query instead (PostgreSQL), and replays only the events stored
after the version it already holds in memory.

The cache is only ever a baseline, never trusted: every read still fetches what
was stored after the cached version, so another writer (a second API process)
is never missed, and optimistic concurrency still guards the save. An aggregate
is taken out of the cache while a batch works on it and put back only once the
batch is stored, so a refused or conflicting batch cannot leave its unsaved
changes behind. Every cached aggregate is thus exactly a stored prefix of its
stream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from threading import Lock
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, LRUCache, project_aggregate
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

# (aggregate id, version held) -> events stored after that version, in order
NewerEvents = Callable[[dict[UUID, int]], dict[UUID, list[Any]]]


class SubjectReader:
    """Aggregates of one application, read in bulk and cached as a baseline."""

    def __init__(self, app: Application, maxsize: int) -> None:
        self._app = app
        self._cache: LRUCache[UUID, Any] | None = LRUCache(maxsize) if maxsize > 0 else None
        self._lock = Lock()  # LRUCache is not thread-safe
        recorder = app.recorder
        self._newer: NewerEvents = (_postgres_newer(app, recorder)
                                    if isinstance(recorder, PostgresAggregateRecorder)
                                    else _one_by_one(app))

    def load(self, ids: Collection[UUID]) -> dict[UUID, Any]:
        """The current aggregate of each id (None: nothing stored), taken out of the cache."""
        baselines = {sid: self._take(sid) for sid in ids}
        newer = self._newer({sid: a.version if a else 0 for sid, a in baselines.items()})
        loaded: dict[UUID, Any] = {}
        for sid, baseline in baselines.items():
            events = newer.get(sid)
            loaded[sid] = project_aggregate(baseline, events) if events else baseline
        return loaded

    def keep(self, aggregates: Iterable[Any]) -> None:
        """Put back aggregates whose every event is stored (none pending)."""
        if self._cache is None:
            return
        with self._lock:
            for aggregate in aggregates:
                self._cache.put(aggregate.id, aggregate)

    def _take(self, sid: UUID) -> Any:
        if self._cache is None:
            return None
        with self._lock:
            try:
                return self._cache.get(sid, evict=True)
            except KeyError:
                return None


def _one_by_one(app: Application) -> NewerEvents:
    # SQLite and in-memory stores: local, so a round trip per subject is cheap.
    def newer(versions: dict[UUID, int]) -> dict[UUID, list[Any]]:
        return {sid: list(app.events.get(sid, gt=version or None))
                for sid, version in versions.items()}
    return newer


def _postgres_newer(app: Application, recorder: PostgresAggregateRecorder) -> NewerEvents:
    datastore = recorder.datastore
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic, e.state"
        " FROM unnest(%s::{id_type}[], %s::bigint[]) AS k(id, version)"
        " JOIN {schema}.{table} e"
        " ON e.originator_id = k.id AND e.originator_version > k.version"
        " ORDER BY e.originator_id, e.originator_version"
    ).format(id_type=SQL(datastore.originator_id_type), schema=Identifier(datastore.schema),
             table=Identifier(recorder.events_table_name))

    # Retried on a dropped connection as the library's own reads are (select_events).
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def newer(versions: dict[UUID, int]) -> dict[UUID, list[Any]]:
        if not versions:
            return {}
        with datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, [list(versions), list(versions.values())])
            rows: Sequence[Any] = cursor.fetchall()
        found: dict[UUID, list[Any]] = {}
        to_domain_event = app.mapper.to_domain_event
        for row in rows:
            stored = StoredEvent(originator_id=row["originator_id"],
                                 originator_version=row["originator_version"],
                                 topic=row["topic"], state=bytes(row["state"]))
            found.setdefault(row["originator_id"], []).append(to_domain_event(stored))
        return found
    return newer
