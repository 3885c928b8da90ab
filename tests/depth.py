"""How deep a run looks: `make test` runs every test at full depth; `make unit`, the inner
loop, sets SALESPULSE_TEST_DEPTH=quick and runs the same tests and assertions over fewer
generated examples and smaller inputs."""

from __future__ import annotations

import os

QUICK = os.environ.get("SALESPULSE_TEST_DEPTH") == "quick"


def examples(full: int) -> int:
    """Hypothesis's example count: `full`, or in a quick run a tenth (10 to `full`)."""
    return min(full, max(full // 10, 10)) if QUICK else full


def register_quick_profile() -> None:
    """In a quick run, property tests with no count of their own try 10 examples, not 100."""
    if QUICK:
        from hypothesis import settings

        settings.register_profile("salespulse-quick", max_examples=10)
        settings.load_profile("salespulse-quick")
