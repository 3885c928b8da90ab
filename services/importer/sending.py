"""Deliver converted events in batches; a refused event rejects its row, the rest go on.

A batch is all-or-nothing at the API, and the refusal names each bad event's index:
that event's row is rejected, its events dropped (from this batch and later ones),
and the rest of the batch is sent again. An introduction refused because the rep
or customer already exists (imported before, under other ids) is simply dropped; a
change log's `deal.created` refused for any reason rejects the rows of that deal's changes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from services.importer.changelog_mapping import ChangeMapping
from services.importer.changelog_rows import change_column_of
from services.importer.convert import Rejection, RowEvent, column_of
from services.importer.mapping import Mapping

BATCH_PATH = "/v1/events/batch"


@dataclass(frozen=True)
class Refusal:
    index: int
    field: str
    message: str


class BatchRefused(Exception):
    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__(f"{len(refusals)} event(s) refused")
        self.refusals = refusals


class Unreachable(Exception):
    """The API (or event store) cannot take events now; nothing more is sent."""


class Sink(Protocol):
    def send(self, events: list[dict[str, Any]]) -> list[str]:
        """Store a batch atomically; each event's status, or raise `BatchRefused`/`Unreachable`."""
        ...


class ApiSink:
    """`POST /v1/events/batch`, retrying a busy or briefly unavailable store."""

    def __init__(self, base_url: str, client: httpx.Client, api_key: str | None = None,
                 retries: int = 3) -> None:
        self.url = base_url.rstrip("/") + BATCH_PATH
        self.client, self.retries = client, retries
        # The key names the tenant; the API never takes it from the request.
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=events, headers=self.headers)
            except httpx.TransportError as exc:
                raise Unreachable(f"{self.url}: {exc}") from None
            if response.status_code == 202:
                return [r["status"] for r in response.json()["results"]]
            if response.status_code not in (502, 503, 504) or attempt == self.retries:
                break
            time.sleep(0.5 * 2 ** attempt)  # a busy store: back off, then try again
        body = _body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if response.status_code in (409, 422) and errors and \
                all(isinstance(e.get("index"), int) for e in errors):
            raise BatchRefused([Refusal(e["index"], e.get("field", ""), e.get("message", ""))
                                for e in errors])
        raise Unreachable(f"{self.url} answered HTTP {response.status_code}: {body}")


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class LedgerSink:
    """Straight into the event store (`--direct`): the relay publishes what is stored."""

    def __init__(self, ledger: Any, tenant: str, tz: str) -> None:
        self.ledger, self.tenant, self.tz = ledger, tenant, tz

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        from eventsourcing.persistence import PersistenceError

        from services.eventstore.ledger import BatchRefused as LedgerRefused
        from services.eventstore.ledger import StoreUnavailable

        try:
            outcomes = self.ledger.record(events, tenant=self.tenant, tz=self.tz)
        except LedgerRefused as refused:
            raise BatchRefused([Refusal(i, e.field, e.message)
                                for i, e in refused.errors]) from None
        except (StoreUnavailable, PersistenceError) as exc:
            raise Unreachable(f"event store: {exc}") from None
        return [o.status for o in outcomes]


@dataclass
class Delivery:
    accepted: int = 0
    duplicate: int = 0
    dropped: int = 0  # introductions of reps or customers that already existed
    others: Counter[str] = field(default_factory=Counter)  # other statuses, e.g. held
    rejected: list[Rejection] = field(default_factory=list)
    # Rows refused after some of their events were stored (those stay stored).
    partial_rows: set[int] = field(default_factory=set)


def deliver(events: list[RowEvent], sink: Sink, mapping: Mapping | ChangeMapping, *,
            batch_size: int = 1000,
            advance: Callable[[int], None] = lambda _n: None) -> Delivery:
    """Send `events` in order; raise `Unreachable` (with what was delivered so far attached)."""
    result = Delivery()
    refused_rows: set[int] = set()
    failed_refs: set[str] = set()
    stored_rows: set[int] = set()
    for start in range(0, len(events), batch_size):
        chunk = events[start:start + batch_size]
        batch = _without(chunk, refused_rows, failed_refs, result)
        while batch:
            try:
                statuses = sink.send([e.event for e in batch])
            except BatchRefused as refusal:
                drop = _refused(batch, refusal.refusals, mapping, result, refused_rows,
                                failed_refs, stored_rows)
                if not drop:
                    raise Unreachable(f"the API refused a batch without naming an event we "
                                      f"can drop: {refusal.refusals[:3]}") from None
                batch = _without([e for i, e in enumerate(batch) if i not in drop],
                                 refused_rows, failed_refs, result)
                continue
            except Unreachable as exc:
                exc.delivery = result  # type: ignore[attr-defined]
                raise
            result.accepted += statuses.count("accepted")
            result.duplicate += statuses.count("duplicate")
            result.others.update(s for s in statuses if s not in ("accepted", "duplicate"))
            stored_rows.update(e.row for e in batch
                               if not (e.introduces or "").startswith(("rep:", "customer:")))
            break
        advance(len(chunk))
    result.rejected.sort(key=lambda r: r.row)
    return result


def _without(batch: list[RowEvent], rows: set[int], refs: set[str],
             result: Delivery) -> list[RowEvent]:
    """`batch` less the events of refused rows; a row needing a refused introduction is refused."""
    kept = []
    for item in batch:
        if item.introduces is None or item.introduces.startswith("deal:"):
            failed = sorted(refs.intersection(item.refs))
            if failed and item.row not in rows:
                rows.add(item.row)
                result.rejected.append(Rejection(item.row, "", f"needs {failed[0]}, "
                                                 "whose introduction the API refused"))
            if item.row in rows:
                if item.introduces:  # a deal not created: its changes must not go
                    refs.add(item.introduces)
                continue
        kept.append(item)
    return kept


def _refused(batch: list[RowEvent], refusals: list[Refusal], mapping: Mapping | ChangeMapping,
             result: Delivery,
             refused_rows: set[int], failed_refs: set[str], stored_rows: set[int]) -> set[int]:
    """Record the refusals; the indexes of the batch to drop before sending it again."""
    drop: set[int] = set()
    for refusal in refusals:
        if not 0 <= refusal.index < len(batch):
            continue
        item = batch[refusal.index]
        drop.add(refusal.index)
        if item.introduces and "already exists" in refusal.message and \
                not item.introduces.startswith("deal:"):  # another deal under this id
            result.dropped += 1
            continue
        if item.introduces:
            failed_refs.add(item.introduces)
        if item.row in refused_rows:
            continue
        refused_rows.add(item.row)
        if item.row in stored_rows:
            result.partial_rows.add(item.row)
        column = _column(refusal.field, mapping, item.event["type"])
        result.rejected.append(Rejection(item.row, column,
                                         f"refused by the API ({item.event['type']}): "
                                         f"{refusal.message}"))
    return drop


def _column(field_path: str, mapping: Mapping | ChangeMapping, event_type: str) -> str:
    if isinstance(mapping, ChangeMapping):
        return change_column_of(field_path, mapping)
    if field_path.startswith("data."):
        return column_of(field_path, mapping, event_type)
    return field_path
