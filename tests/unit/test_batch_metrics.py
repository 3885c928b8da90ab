"""A histogram observed a batch at a time exposes what prometheus_client's would."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.batch_metrics import BatchHistogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def exposed(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {(sample.name, sample.labels.get("le", "")): sample.value
            for family in families for sample in family.samples
            if not sample.name.endswith("_created")}


values = st.lists(st.one_of(st.sampled_from(BUCKETS), st.floats(0, 100, allow_nan=False)),
                  max_size=200)


@given(batches=st.lists(values, max_size=5))
def test_batches_expose_the_same_buckets_count_and_sum_as_one_observation_at_a_time(
        batches: list[list[float]]) -> None:
    one_at_a_time, batched = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram("delay_seconds", "d", buckets=BUCKETS, registry=one_at_a_time)
    batch_histogram = BatchHistogram("delay_seconds", "d", BUCKETS, registry=batched)
    for batch in batches:
        for value in batch:
            histogram.observe(value)
        batch_histogram.observe_many(batch)
    expected, got = exposed(one_at_a_time), exposed(batched)
    assert got.keys() == expected.keys()
    for sample, value in expected.items():
        # the sum is exact (fsum) where one observation at a time rounds at every step
        assert got[sample] == pytest.approx(value, rel=1e-12, abs=1e-12), sample


def test_a_value_on_a_bucket_bound_counts_in_that_bucket_and_the_infinite_bucket_holds_all(
) -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("delay_seconds", "d", (0.1, 1), registry=registry)
    histogram.observe_many([0.1, 0.1000001, 1, 1e9])
    samples = exposed(registry)
    assert samples["delay_seconds_bucket", "0.1"] == 1
    assert samples["delay_seconds_bucket", "1.0"] == 3
    assert samples["delay_seconds_bucket", "+Inf"] == 4
    assert samples["delay_seconds_count", ""] == 4
    assert math.isclose(samples["delay_seconds_sum", ""], 0.1 + 0.1000001 + 1 + 1e9)
