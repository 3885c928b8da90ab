"""A whole simulated year through the real stack: the funnel and every breakdown equal
the independent computation (the shared `year_stack` other metric families read too)."""

from __future__ import annotations

import pytest

from tests import oracle
from tests.conftest import LoadedStack
from tests.integration.test_event_path import STAGES, comparable

pytestmark = pytest.mark.integration


def test_a_year_of_history_gives_the_independent_funnel_and_breakdowns(
        year_stack: LoadedStack) -> None:
    events = year_stack.events
    assert comparable(year_stack.get("/v1/funnel")) == \
        comparable(oracle.funnel(events, stages=STAGES, filters={}))
    for by in ("team", "month"):
        assert comparable(year_stack.get("/v1/breakdown", by=by)) == \
            comparable(oracle.breakdown(events, by=by, stages=STAGES, filters={})), by
