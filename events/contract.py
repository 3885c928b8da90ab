"""The public event contract (v1): one pydantic model per event type.

Declared once here; the JSON Schemas served at `/v1/schemas/{type}` and the
OpenAPI document are generated from these models.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from events.bounds import EXTRA_FIELDS_SCHEMA
from events.vocabulary import TargetMetric

# Every string has a bound (docs/SECURITY.md): ids and the names of dimensions a view lists
# 128 characters, people's and companies' names 200, free text 1,000.
ID_MAX, NAME_MAX, TEXT_MAX = 128, 200, 1000
# Not blank: the pattern says so in the JSON Schema (stripped, "  " would be empty).
Id = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, strip_whitespace=True,
                                      pattern=r"\S")]
Label = Annotated[str, StringConstraints(max_length=ID_MAX)]  # region, source, product, ...
Name = Annotated[str, StringConstraints(max_length=NAME_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]  # reasons, outcomes
# A decimal as a string is digits with an optional fraction, nothing else: no spaces, signs,
# exponents or digit separators (Python's Decimal would take " 1 " and "1_000").
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DECIMAL_MAX_LENGTH = 40  # characters; zeros beyond the places are harmless, not endless


def _plain_decimal(value: object) -> object:
    if isinstance(value, str) and not (len(value) <= DECIMAL_MAX_LENGTH
                                       and _DECIMAL.match(value)):
        raise ValueError(f"a decimal is digits with an optional fraction ({DECIMAL_PATTERN}), "
                         f"at most {DECIMAL_MAX_LENGTH} characters")
    return value


def _decimal_schema(most: str, places: int, description: str) -> WithJsonSchema:
    """What a decimal field says in the JSON Schema: a number, or a string of
    DECIMAL_PATTERN, at most `most` with at most `places` decimal places."""
    return WithJsonSchema({"anyOf": [
        {"type": "number", "minimum": 0, "maximum": float(most)},
        {"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": DECIMAL_MAX_LENGTH}],
        "description": f"{description}: at most {most}, {places} decimal places"})


_DECIMAL = re.compile(DECIMAL_PATTERN)
PlainDecimal = BeforeValidator(_plain_decimal)
Amount = Annotated[Decimal, PlainDecimal, Field(
    ge=0, le=Decimal("99999999999999.999999"), allow_inf_nan=False, max_digits=20,
    decimal_places=6), _decimal_schema("99999999999999.999999", 6, "an amount")]
Minutes = Annotated[Decimal, PlainDecimal, Field(
    ge=0, le=1_000_000, allow_inf_nan=False, max_digits=13, decimal_places=6),
    _decimal_schema("1000000", 6, "minutes")]

ActivityKind = Literal["call", "visit", "email", "meeting", "message", "demo", "other"]
# Business time lies in these years: far enough from datetime's limits that any time zone,
# period end or look-ahead window computed from it stays representable.
FIRST_YEAR, LAST_YEAR = 1900, 2999
PERIOD_PATTERN = r"^(19\d{2}|2\d{3})(-Q[1-4]|-(0[1-9]|1[0-2]))?$"  # years FIRST_YEAR-LAST_YEAR
Period = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]


def business_time(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"year {value.year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return value


class Data(BaseModel):
    # Front ends may send fields added in later versions: keep them, don't refuse (within
    # events/bounds.py's bounds, checked before the model).
    model_config = ConfigDict(extra="allow",
                              json_schema_extra={"additionalProperties": EXTRA_FIELDS_SCHEMA})


class RepJoined(Data):
    rep_id: Id
    name: Name
    team_id: Id
    manager_id: Id | None = None
    region: Label | None = None


class RepMoved(Data):
    rep_id: Id
    team_id: Id
    manager_id: Id | None = None
    region: Label | None = None


class CustomerCreated(Data):
    customer_id: Id
    name: Name | None = None
    segment: Label | None = None
    industry: Label | None = None
    region: Label | None = None


class LeadCreated(Data):
    lead_id: Id
    source: Label | None = None
    region: Label | None = None
    company: Name | None = None
    owner_id: Id | None = None


class LeadAssigned(Data):
    lead_id: Id
    owner_id: Id


class LeadDecided(Data):
    lead_id: Id
    reason: Text | None = None


class LeadConverted(Data):
    lead_id: Id
    deal_id: Id


class ActivitySubject(Data):
    """An activity is about exactly one lead, deal or customer."""

    lead_id: Id | None = None
    deal_id: Id | None = None
    customer_id: Id | None = None

    @model_validator(mode="after")
    def _exactly_one_subject(self) -> ActivitySubject:
        # bool() sums: the same truthiness as counting, at a third of a generator's cost
        if bool(self.lead_id) + bool(self.deal_id) + bool(self.customer_id) != 1:
            raise ValueError("give exactly one of lead_id, deal_id, customer_id")
        return self


class ActivityLogged(ActivitySubject):
    activity_id: Id
    kind: ActivityKind
    rep_id: Id
    duration_min: Minutes | None = None
    outcome: Text | None = None


class ActivityScheduled(ActivitySubject):
    activity_id: Id
    kind: ActivityKind
    rep_id: Id
    due_at: datetime

    _due_at_in_range = field_validator("due_at")(business_time)


class DealCreated(Data):
    deal_id: Id
    owner_id: Id
    customer_id: Id | None = None
    lead_id: Id | None = None
    amount: Amount | None = None
    currency: Label | None = None
    product: Label | None = None
    source: Label | None = None
    stage: Id | None = None
    expected_close: Label | None = None


class DealStageChanged(Data):
    deal_id: Id
    stage: Id


class DealAmountChanged(Data):
    deal_id: Id
    amount: Amount


class DealOwnerChanged(Data):
    deal_id: Id
    owner_id: Id


class DealCloseDateChanged(Data):
    deal_id: Id
    expected_close: Label


class QuoteSent(Data):
    deal_id: Id
    quote_id: Id
    amount: Amount


class DealWon(Data):
    deal_id: Id
    amount: Amount | None = None


class DealLost(Data):
    deal_id: Id
    reason: Text | None = None
    competitor: Label | None = None


class OrderBooked(Data):
    order_id: Id
    customer_id: Id
    amount: Amount
    deal_id: Id | None = None
    product: Label | None = None


class PaymentReceived(Data):
    payment_id: Id
    order_id: Id
    amount: Amount


class TargetSet(Data):
    scope: Literal["company", "team", "rep"]
    scope_id: Id | None = None
    period: Period
    metric: TargetMetric
    value: Amount


# Won and lost are the outcomes after the open stages (events/rules.py refuses them too).
OpenStage = Annotated[Id, Field(json_schema_extra={"not": {"enum": ["won", "lost"]}})]


class PipelineConfigured(Data):
    """Emitted by `PUT /v1/pipeline`: the tenant's ordered open stages."""

    stages: Annotated[list[OpenStage], Field(min_length=1, max_length=30,
                                             json_schema_extra={"uniqueItems": True})]
    # strict: a probability is a number, not `false`
    win_probabilities: dict[Id, Annotated[float, Field(ge=0, le=1, strict=True)]] | None = None
    stall_days: dict[Id, Annotated[float, Field(gt=0, le=36_500, strict=True)]] | None = None


Weight = Annotated[Decimal, PlainDecimal, Field(
    ge=0, le=100, allow_inf_nan=False, max_digits=12, decimal_places=6),
    _decimal_schema("100", 6, "a weight")]


class ScoringWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: Weight
    process: Weight
    customer: Weight


class ScoringConfigured(Data):
    """Emitted by `PUT /v1/scoring`: the weights of the rep score's components."""

    weights: ScoringWeights

    @field_validator("weights")
    @classmethod
    def _sum_to_whole(cls, weights: ScoringWeights) -> ScoringWeights:
        total = weights.results + weights.process + weights.customer
        if total not in (1, 100):
            raise ValueError(f"results + process + customer must be 100 (or 1); got {total}")
        return weights


DATA_MODELS: dict[str, type[Data]] = {
    "rep.joined": RepJoined,
    "rep.moved": RepMoved,
    "customer.created": CustomerCreated,
    "lead.created": LeadCreated,
    "lead.assigned": LeadAssigned,
    "lead.qualified": LeadDecided,
    "lead.disqualified": LeadDecided,
    "lead.converted": LeadConverted,
    "activity.logged": ActivityLogged,
    "activity.scheduled": ActivityScheduled,
    "deal.created": DealCreated,
    "deal.stage_changed": DealStageChanged,
    "deal.amount_changed": DealAmountChanged,
    "deal.owner_changed": DealOwnerChanged,
    "deal.close_date_changed": DealCloseDateChanged,
    "quote.sent": QuoteSent,
    "deal.won": DealWon,
    "deal.lost": DealLost,
    "order.booked": OrderBooked,
    "payment.received": PaymentReceived,
    "target.set": TargetSet,
    "pipeline.configured": PipelineConfigured,
    "scoring.configured": ScoringConfigured,
}
EVENT_TYPES = tuple(DATA_MODELS)
SCHEMA_VERSION = 1


class Envelope(BaseModel):
    """What every event looks like on the wire, before its `data` is checked by type."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    type: Annotated[str, StringConstraints(max_length=64)]
    tenant: Id | None = None
    occurred_at: str = Field(max_length=64, description="Business time, ISO 8601; without an "
                             "offset it is read in the tenant's time zone.")
    actor: Id | None = None
    schema_version: Annotated[int, Field(ge=1)] = SCHEMA_VERSION
    data: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _parseable(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date-time, e.g. 2017-03-01T10:00:00+08:00") from None
        business_time(parsed)
        return value

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(f"schema version {value} is newer than this server's {SCHEMA_VERSION}")
        return value


def event_model(event_type: str) -> type[BaseModel]:
    """The full model of one event type (envelope + typed data), for its JSON Schema."""
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_")) + "Event"
    return create_model(
        name,
        __base__=Envelope,
        type=(Literal[event_type], ...),  # type: ignore[arg-type]
        data=(DATA_MODELS[event_type], ...),
    )


def json_schema(event_type: str) -> dict[str, Any]:
    return event_model(event_type).model_json_schema()
