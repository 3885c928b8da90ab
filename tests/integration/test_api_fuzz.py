"""Schemathesis fuzzes the live API from its own OpenAPI document.

Every documented operation is called with generated requests, valid and invalid
(schemathesis' positive and negative modes), under every check schemathesis has: no 5xx,
documented status codes, content types, headers and bodies, what the schema allows
accepted and what it forbids refused (bar the refusals in BEYOND_THE_SCHEMA), auth never
ignored.
Reads run against the session's loaded year (they only read); writes run against a
stack of their own, so the year's figures stay what the other tests expect.

Runtime is bounded by `FUZZ_MAX_EXAMPLES` examples per operation (default 20), without
shrinking: about a minute of requests on two cores, besides loading the year.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED
from schemathesis.checks import load_all_checks

from tests.conftest import LoadedStack, Stack

pytestmark = pytest.mark.integration

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
load_all_checks()
# Every check schemathesis has: no 5xx; status codes, content types, headers and bodies as
# documented; what the schema allows is accepted and what it forbids refused; auth not
# ignored; a missing required header refused; an undocumented method refused.
CHECKS = list(REGISTERED.get_all())
# Where a request valid by the schema may still be refused (422 or 409), for a reason no JSON
# Schema can state: the rest of the checks hold there too.
BEYOND_THE_SCHEMA = {
    "POST /v1/events": "an event is judged against its subject's history (events/rules.py)",
    "POST /v1/events/batch": "each event is judged against its subject's history",
    "PUT /v1/scoring": "the three weights must sum to 100 (or 1)",
    "PUT /v1/connectors/{name}/mapping": "a mapping is judged against its CRM's own fields "
                                         "(services/connectors/mapping.py)",
    "PUT /v1/connectors/{name}/credentials": "each CRM takes its own credentials "
                                             "(HubSpot an app secret, Pipedrive a login)",
    "GET /v1/leaderboard": "a window is `period` or `from`/`to`, not both",
    "GET /v1/reps/{rep_id}": "a window is `period` or `from`/`to`, not both",
}
# An endless server-sent event stream: a request to it never ends on its own.
NOT_FUZZED = "/v1/alerts/stream"
# No shrinking: each failure is reported with its request as found; a shrink over a slow
# read would take minutes.
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck), database=None,
                         phases=[Phase.explicit, Phase.generate])
TIMEOUT = 30  # seconds; a read slower than this on a year of data is a finding too

calls: Counter[str] = Counter()
slowest: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_calls() -> Iterator[None]:
    yield
    if calls:
        print(f"\nschemathesis: {sum(calls.values())} requests over {len(calls)} operations")
        for label, count in sorted(calls.items()):
            print(f"  {count:4d}  {label}  (slowest {slowest.get(label, 0):.2f} s)")


def fuzz(stack: Stack, *, reads: bool) -> list[str]:
    """Fuzz each operation (GETs, or every other method) of `stack`'s API; the failures."""
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json",
                                           headers=dict(stack.headers))
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper() == "GET") != reads or operation.path == NOT_FUZZED:
            continue
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        @FUZZ_SETTINGS
        @given(case=cases)
        def answers_as_documented(case: Any) -> None:
            label = case.operation.label
            calls[label] += 1
            started = time.monotonic()
            try:
                # A copy: schemathesis adds its own headers to the dict it is given.
                checks = [c for c in CHECKS if label not in BEYOND_THE_SCHEMA
                          or c.__name__ != "positive_data_acceptance"]
                case.call_and_validate(base_url=stack.url, headers=dict(stack.headers),
                                       checks=checks, timeout=TIMEOUT)
            finally:
                slowest[label] = max(slowest.get(label, 0), time.monotonic() - started)

        try:
            answers_as_documented()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report them all
            failures.append(f"{operation.label}: {exc}")
            print(f"\n--- {failures[-1]}", flush=True)
    return failures


def test_every_read_of_a_loaded_year_answers_as_documented(year_stack: LoadedStack) -> None:
    failures = fuzz(year_stack.stack, reads=True)
    assert not failures, "\n\n".join(failures)


def test_every_write_answers_as_documented(stack: Stack) -> None:
    failures = fuzz(stack, reads=False)
    assert not failures, "\n\n".join(failures)
