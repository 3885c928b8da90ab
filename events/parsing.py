"""From a raw JSON object to a checked, normalised sales event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from events.bounds import data_errors
from events.contract import DATA_MODELS, Envelope, event_model
from events.errors import FieldError, InvalidEvent
from events.vocabulary import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class SalesEvent:
    """A contract event whose shape has been checked; `data` is typed by `type`."""

    id: str
    type: str
    tenant: str
    occurred_at: datetime  # always aware
    actor: str | None
    data: BaseModel

    def canonical(self) -> dict[str, Any]:
        """The stored and published form: JSON-ready, amounts as exact decimal strings."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "tenant": self.tenant,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data.model_dump(mode="json", exclude_none=True),
        }
        if self.actor is not None:
            out["actor"] = self.actor
        return out


def _field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    return [
        FieldError((prefix + ".".join(str(p) for p in err["loc"])).rstrip("."), err["msg"])
        for err in exc.errors()
    ]


def parse_event(raw: Any, *, tenant: str = "default", tz: str = DEFAULT_TIMEZONE) -> SalesEvent:
    """Check one raw event against the contract; raise `InvalidEvent` naming each bad field.

    `tenant` is the caller's tenant, used when the event names none; an event naming
    another tenant is refused (a credential never writes across tenants).
    """
    _check_bounds(raw)
    checked = _accepted(raw, tenant)
    if checked is not None:
        return SalesEvent(checked.id, checked.type, tenant, _aware(checked.occurred_at, tz),
                          checked.actor, checked.data)
    return _judged(raw, tenant, tz)


def _check_bounds(raw: Any) -> None:
    # Before pydantic: an input nested deep enough exhausts its recursion (a 500, not a 422).
    if isinstance(raw, dict):
        errors = data_errors(raw.get("data"))
        if errors:
            raise InvalidEvent(errors)


def _accepted(raw: Any, tenant: str) -> Any | None:
    """The event's full model when one pydantic call (envelope and data, the same models)
    accepts it for `tenant`; None otherwise, and the two-step check judges it, with its
    reasons. It only ever accepts, so it refuses nothing the two-step check would accept."""
    if not isinstance(raw, dict):
        return None
    try:
        checked = _ANY_EVENT.validate_python(raw)
    except ValidationError:
        return None
    return checked if checked.tenant is None or checked.tenant == tenant else None


def _judged(raw: Any, tenant: str, tz: str) -> SalesEvent:
    # Envelope first, then `data` by type: slower, but says what is wrong, field by field.
    if not isinstance(raw, dict):
        raise InvalidEvent([FieldError("", "an event is a JSON object")])
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(_field_errors(exc)) from None
    model = DATA_MODELS.get(envelope.type)
    if model is None:
        raise InvalidEvent([FieldError("type", f"unknown event type {envelope.type!r}")])
    if envelope.tenant is not None and envelope.tenant != tenant:
        raise InvalidEvent([FieldError("tenant", f"this credential writes to tenant {tenant!r}")])
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise InvalidEvent(_field_errors(exc, "data.")) from None
    return SalesEvent(envelope.id, envelope.type, tenant, _aware(envelope.occurred_at, tz),
                      envelope.actor, data)


def _aware(occurred_at: str, tz: str) -> datetime:
    parsed = datetime.fromisoformat(occurred_at)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ZoneInfo(tz))


# Every event type's full model (the envelope with its typed `data`), chosen by `type`: the
# contract checked in one pydantic call, without building a SalesEvent nobody reads.
_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[  # type: ignore[arg-type]
    Union[tuple(event_model(t) for t in DATA_MODELS)],  # noqa: UP007 - a runtime tuple
    Field(discriminator="type")])


def check_event(raw: Any, *, tenant: str = "default") -> None:
    """Raise `InvalidEvent` exactly when `parse_event` would, with its reasons; cheaper.

    The fast path only ever accepts (the same models, so no event `parse_event` refuses);
    anything it does not accept is judged, and its reasons given, by `parse_event`.
    """
    _check_bounds(raw)
    if _accepted(raw, tenant) is None:  # accepted: no SalesEvent built, the projector reads none
        parse_event(raw, tenant=tenant)
