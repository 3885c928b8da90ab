"""How deep a run looks: `make test` runs every test at full depth; `make unit`, the inner
loop, sets SALESPULSE_TEST_DEPTH=quick and runs the same tests and assertions over fewer
generated examples and smaller inputs."""

from __future__ import annotations

import os

QUICK = os.environ.get("SALESPULSE_TEST_DEPTH") == "quick"


def examples(full: int) -> int:
    """Hypothesis's example count: `full`, or in a quick run a tenth (10 to `full`)."""
    return min(full, max(full // 10, 10)) if QUICK else full


def register_profiles() -> None:
    """Hypothesis's profile for the suite: no deadline and no health check on how fast
    examples are made, at any depth (a check against the clock fails on a shared 2-core
    machine for reasons that are not the code's: a leaderboard property test failed CI's
    twin run only because a benchmark shared its cores); in a quick run, property tests with
    no count of their own try 10 examples, not 100."""
    from hypothesis import HealthCheck, settings

    slow = [HealthCheck.too_slow]
    settings.register_profile("salespulse", deadline=None, suppress_health_check=slow)
    settings.register_profile("salespulse-quick", max_examples=10, deadline=None,
                              suppress_health_check=slow)
    settings.load_profile("salespulse-quick" if QUICK else "salespulse")
