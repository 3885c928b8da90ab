"""`parse_event` checks an event with one pydantic call, and falls back to the two-step
check (envelope, then `data` by type) for its reasons: both give the same event, or
refuse the same events with the same reasons."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from events.contract import DATA_MODELS
from events.errors import InvalidEvent
from events.parsing import _judged, parse_event
from tests.unit.test_projector_decode import _BY_TYPE, _SIMULATED, mutations

TZ = "Asia/Shanghai"


def outcome(parse: Any, event: Any, tenant: str) -> Any:
    try:
        return parse(event, tenant, TZ)
    except InvalidEvent as exc:
        return str(exc)


def one_call(event: Any, tenant: str, tz: str) -> Any:
    return parse_event(event, tenant=tenant, tz=tz)


def test_the_simulated_events_parse_to_what_the_two_step_check_makes() -> None:
    for event in _SIMULATED:
        assert outcome(one_call, event, "default") == outcome(_judged, event, "default")


def test_an_event_without_offset_is_read_in_the_tenant_time_zone() -> None:
    event = {**_BY_TYPE["deal.stage_changed"], "occurred_at": "2017-03-01T10:00:00"}
    parsed = parse_event(event, tenant="default", tz=TZ)
    assert parsed == _judged(event, "default", TZ)
    assert parsed.occurred_at.utcoffset() is not None


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_a_broken_event_is_refused_by_both_with_the_same_reasons(event_type: str) -> None:
    for event, tenant in itertools.product(mutations(_BY_TYPE[event_type]), ("default", "other")):
        assert outcome(one_call, event, tenant) == outcome(_judged, event, tenant), event
