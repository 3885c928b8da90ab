"""A served API freezes what is alive once it has started, and collects young objects less
often: the collector's share of a loaded API fell from ~13% of its CPU to ~3%
(docs/PERFORMANCE.md, "Credential path")."""

from __future__ import annotations

import gc

from services.api.app import YOUNG_COLLECTION_ALLOCATIONS, settle_heap


def test_settling_freezes_the_live_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 1000  # at least the modules imported by the app
        assert gc.get_threshold() == (YOUNG_COLLECTION_ALLOCATIONS, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
