"""`salespulse-bench channels` runs end to end on a few messages: every channel delivers to
its local receiver and gets a delay (the figures themselves are reported, never judged)."""

from __future__ import annotations

import pytest

from bench.channels import run

pytestmark = pytest.mark.integration


def test_the_channels_bench_measures_every_channel() -> None:
    delays = run(3, "zh-CN")
    assert set(delays) == {"wecom", "dingtalk", "feishu", "slack", "teams", "webhook", "email",
                           "bare POST (floor)"}
    assert all(len(values) == 3 and all(v > 0 for v in values) for values in delays.values())
