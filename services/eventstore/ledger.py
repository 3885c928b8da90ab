"""The sales ledger: contract events checked against their aggregates and stored.

Built on the `eventsourcing` library: each lead, deal, customer, order, rep,
target and pipeline is an event-sourced aggregate whose events carry the
canonical contract event. Persistence (PostgreSQL or SQLite) is chosen by the
environment, as the library intends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel

from events.errors import FieldError, InvalidEvent, Refused, Unknown
from events.order import envelope_key
from events.parsing import SalesEvent, parse_event
from events.rules import CREATES, Subject, decide, subject_of
from events.vocabulary import DEFAULT_STAGES, DEFAULT_TIMEZONE, HELD
from services.eventstore.aggregates import (
    JUST_CHECKED,
    HeldEvents,
    SalesSubject,
    held_key,
    holding_envelope,
    subject_id,
)
from services.eventstore.subjects import SubjectReader

__all__ = ["HOLD_FOR", "BatchRefused", "HeldEvents", "OnUnknown", "Outcome", "SalesLedger",
           "SalesSubject", "StoreUnavailable", "held_key", "subject_id"]

T = TypeVar("T")
OnUnknown = Literal["hold", "refuse"]
HOLD_FOR = timedelta(days=7)  # an event waits this long for its subject, then is dropped


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str  # accepted | duplicate | held


class BatchRefused(Exception):
    """At least one event of a batch was refused; none of the batch was stored."""

    def __init__(self, errors: list[tuple[int, FieldError]], status: int) -> None:
        super().__init__(f"{len(errors)} event(s) refused")
        self.errors = errors
        self.status = status


class StoreUnavailable(Exception):
    """The event store cannot be reached; the caller may retry later."""


class SalesLedger(Application):
    name = "salespulse"
    # Defaults the environment may still override: eventsourcing's JSON, written by orjson.
    env = {"TRANSCODER_TOPIC": "services.eventstore.transcoder:OrjsonTranscoder"}
    # Subjects kept in memory between batches (0: none); see services/eventstore/subjects.py.
    SUBJECT_CACHE_MAXSIZE = "SUBJECT_CACHE_MAXSIZE"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self.subjects = SubjectReader(self, int(self.env.get(self.SUBJECT_CACHE_MAXSIZE, "50000")))

    def record(self, raws: list[Any], *, tenant: str, tz: str = DEFAULT_TIMEZONE,
               unknown: OnUnknown = "hold", now: datetime | None = None,
               hold_for: timedelta = HOLD_FOR) -> list[Outcome]:
        """Check and store a batch atomically: every event, or none of them.

        An event naming a subject not known yet is held until that subject arrives
        (`unknown="hold"`: its outcome is `held`) or refused like any invalid event
        (`unknown="refuse"`, for senders whose typo must show at once). `now` dates holds
        and releases (default: the wall clock); a held event older than `hold_for` when its
        subject arrives is dropped instead of applied."""
        parsed = [_parse(raw, tenant, tz) for raw in raws]
        return self._store(lambda: _UnitOfWork(self, tenant, unknown, now, hold_for),
                           lambda unit: unit.apply_all(parsed))

    def drop_expired(self, tenant: str, waiting_for: list[str], *, now: datetime,
                     hold_for: timedelta = HOLD_FOR) -> int:
        """Drop, with the reason, the events held longer than `hold_for` for the subjects
        named (`kind/key`, as `GET /v1/events/pending` lists them); how many were dropped."""
        return self._store(lambda: _UnitOfWork(self, tenant, "hold", now, hold_for),
                           lambda unit: unit.drop_expired(waiting_for))

    def _store(self, start: Callable[[], _UnitOfWork], work: Callable[[_UnitOfWork], T]) -> T:
        for _attempt in range(5):
            unit = start()
            done = work(unit)
            try:
                # Straight to the event store, in batch order: save() would only collect the
                # same events again, checking each against a Protocol (~40 us an event).
                self.events.put(unit.pending_in_order())
            except IntegrityError:
                continue  # another writer touched one of these aggregates: decide again
            self.subjects.keep(a for a in unit.loaded.values() if a is not None)
            return done
        raise StoreUnavailable("could not store the batch: concurrent writers kept conflicting")

    def load(self, tenant: str, kind: str, key: str) -> SalesSubject | None:
        try:
            return self.repository.get(subject_id(tenant, kind, key))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None


def _parse(raw: Any, tenant: str, tz: str) -> SalesEvent | InvalidEvent:
    # Parsed once per request, not once per attempt: the contract check needs no state.
    try:
        return parse_event(raw, tenant=tenant, tz=tz)
    except InvalidEvent as invalid:
        return invalid


# Subjects a rule may ask about besides the event's own (World.exists).
_REFERENCED = ("customer", "lead", "deal")


@cache
def _references(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    # The (kind, field) pairs an event type declares: asking a model for a field it lacks
    # goes through pydantic's __getattr__ and an AttributeError (most of the prefetch's time).
    return tuple((kind, f"{kind}_id") for kind in _REFERENCED
                 if f"{kind}_id" in model.model_fields)


def _same_content(first: SalesEvent | InvalidEvent, again: SalesEvent, at: int,
                  index: int) -> None:
    """An id given twice in one batch is a duplicate only with the same content; with other
    content it is a conflict (409) naming both indexes, not a silent drop."""
    if isinstance(first, SalesEvent) and first.canonical() == again.canonical():
        return
    raise Refused("id", f"event id {again.id!r} is at indexes {at} and {index} with "
                        "different content", status=409)


class _UnitOfWork:
    """The aggregates one batch touches, loaded once, changed in order, saved together."""

    def __init__(self, ledger: SalesLedger, tenant: str, unknown: OnUnknown = "hold",
                 now: datetime | None = None, hold_for: timedelta = HOLD_FOR) -> None:
        self.ledger, self.tenant, self.unknown = ledger, tenant, unknown
        self.now, self.hold_for = now or datetime.now(UTC), hold_for
        self.loaded: dict[UUID, SalesSubject | None] = {}
        self.pending: list[Any] = []

    def get(self, kind: str, key: str) -> SalesSubject | None:
        sid = subject_id(self.tenant, kind, key)
        if sid not in self.loaded:  # not foreseen by `prefetch`
            self.loaded.update(self.ledger.subjects.load([sid]))
        return self.loaded[sid]

    def prefetch(self, events: list[tuple[SalesEvent, Subject]]) -> None:
        """Load every subject the batch may read, in one go: each event's own subject, the
        ones it refers to, and the tenant's pipeline."""
        ids = {subject_id(self.tenant, "pipeline", self.tenant)}
        for sales_event, subject in events:
            ids.add(subject_id(self.tenant, subject.kind, subject.key))
            if CREATES.get(sales_event.type) == subject.kind:  # may release what waits for it
                ids.add(subject_id(self.tenant, HELD, held_key(subject.kind, subject.key)))
            data = sales_event.data
            for kind, field in _references(type(data)):
                key = getattr(data, field)
                if key:
                    ids.add(subject_id(self.tenant, kind, key))
        self.loaded.update(self.ledger.subjects.load(ids))

    # World, for the rules
    def stages(self) -> tuple[str, ...]:
        pipeline = self.get("pipeline", self.tenant)
        return pipeline.state.stages if pipeline and pipeline.state else DEFAULT_STAGES

    def exists(self, kind: str, key: str) -> bool:
        return self.get(kind, key) is not None

    def apply_all(self, parsed: list[SalesEvent | InvalidEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        errors: list[tuple[int, FieldError]] = []
        statuses: set[int] = set()
        # Each event's subject worked out once, for the prefetch and for applying it.
        subjects = [None if isinstance(p, InvalidEvent) else subject_of(p) for p in parsed]
        self.prefetch([(p, s) for p, s in zip(parsed, subjects, strict=True)
                       if isinstance(p, SalesEvent) and s is not None])
        first_of: dict[str, int] = {}  # each event id's first index in the batch
        for index, (item, subject) in enumerate(zip(parsed, subjects, strict=True)):
            try:
                if isinstance(item, InvalidEvent):
                    raise item  # refused by the contract before any aggregate was read
                assert subject is not None
                first = first_of.setdefault(item.id, index)
                if first != index:
                    _same_content(parsed[first], item, first, index)
                outcomes.append(self.apply(item, subject))
            except Refused as refused:
                errors.extend((index, e) for e in refused.errors)
                statuses.add(refused.status)
        if errors:
            raise BatchRefused(errors, 409 if statuses == {409} else 422)
        return outcomes

    def apply(self, sales_event: SalesEvent, subject: Subject) -> Outcome:
        aggregate = self.get(subject.kind, subject.key)
        if aggregate is not None and sales_event.id in aggregate.seen:
            return Outcome(sales_event.id, "duplicate")
        try:
            if aggregate is None:
                decide(sales_event, subject, None, self)
            else:
                aggregate.history.judge(sales_event, subject, self)
        except Unknown as unknown:
            if self.unknown == "refuse":
                raise
            return self._hold(sales_event, unknown)
        completed = self._complete(sales_event)
        envelope = completed.canonical()
        token = JUST_CHECKED.set((envelope, completed))
        try:
            if aggregate is None:
                aggregate = SalesSubject(self.tenant, subject.kind, subject.key, envelope)
                self.loaded[aggregate.id] = aggregate
            else:
                aggregate.record(subject.kind, subject.key, envelope)
        finally:
            JUST_CHECKED.reset(token)
        self.pending.append(aggregate.pending_events[-1])
        if CREATES.get(sales_event.type) == subject.kind:
            self._release(subject)
        return Outcome(sales_event.id, "accepted")

    def _held(self, kind: str, key: str) -> HeldEvents | None:
        found = self.get(HELD, held_key(kind, key))
        return found if isinstance(found, HeldEvents) else None

    def _recordholding_envelope(self, kind: str, key: str, envelope: dict[str, Any]) -> None:
        held = self._held(kind, key)
        name = held_key(kind, key)
        if held is None:
            held = HeldEvents(self.tenant, HELD, name, envelope)
            self.loaded[held.id] = held
        else:
            held.record(HELD, name, envelope)
        self.pending.append(held.pending_events[-1])

    def _hold(self, sales_event: SalesEvent, unknown: Unknown) -> Outcome:
        held = self._held(unknown.kind, unknown.key)
        if held is not None and (sales_event.id in held.pending
                                 or sales_event.id in held.released):
            return Outcome(sales_event.id, "duplicate")
        self._recordholding_envelope(unknown.kind, unknown.key, holding_envelope(
            self.tenant, "event.held", self.now,
            {"id": sales_event.id, "event": sales_event.canonical(),
             "reason": unknown.errors[0].message, "field": unknown.errors[0].field}))
        return Outcome(sales_event.id, "held")

    def _release(self, subject: Subject) -> None:
        """Apply, in business time, the events that waited for `subject`, just created; one
        its history refuses, or that waited too long, is dropped with the reason."""
        held = self._held(subject.kind, subject.key)
        if held is None or not held.pending:
            return
        released: list[str] = []
        for event, _reason, held_at in sorted(held.pending.values(),
                                              key=lambda p: envelope_key(p[0])):
            try:
                if self.now - datetime.fromisoformat(held_at) > self.hold_for:
                    raise Refused("occurred_at", self._expired(subject.kind, subject.key))
                parsed = parse_event(event, tenant=self.tenant)
                self.apply(parsed, subject_of(parsed))
                released.append(event["id"])
            except Refused as refused:
                self._recordholding_envelope(subject.kind, subject.key, holding_envelope(
                    self.tenant, "event.dropped", self.now,
                    {"id": event["id"], "reason": refused.errors[0].message,
                     "field": refused.errors[0].field}))
        if released:
            self._recordholding_envelope(subject.kind, subject.key, holding_envelope(
                self.tenant, "event.released", self.now, {"ids": released}))

    def _expired(self, kind: str, key: str) -> str:
        return f"waited longer than {self.hold_for / timedelta(days=1):g} days for {kind} {key!r}"

    def drop_expired(self, waiting_for: list[str]) -> int:
        dropped = 0
        for name in waiting_for:
            kind, _, key = name.partition("/")
            held = self._held(kind, key)
            for event_id, (_event, _reason, held_at) in sorted((held.pending if held else {})
                                                                .items()):
                if self.now - datetime.fromisoformat(held_at) > self.hold_for:
                    self._recordholding_envelope(kind, key, holding_envelope(
                        self.tenant, "event.dropped", self.now,
                        {"id": event_id, "reason": self._expired(kind, key),
                         "field": "occurred_at"}))
                    dropped += 1
        return dropped

    def _complete(self, sales_event: SalesEvent) -> SalesEvent:
        # Store what the rules implied, so readers need not know the pipeline of the day.
        data = sales_event.data
        if sales_event.type == "deal.created" and data.stage is None:  # type: ignore[attr-defined]
            return replace(sales_event, data=data.model_copy(update={"stage": self.stages()[0]}))
        return sales_event

    def pending_in_order(self) -> list[Any]:
        for aggregate in self.loaded.values():
            if aggregate is not None:
                aggregate.collect_events()  # clears them: we save our ordered list instead
        return self.pending
