"""A unit of work is stalled when behind without moving, silent when it stops reporting."""

from __future__ import annotations

from services.progress import Entry, advance, assess

STALL = 15.0


def test_moving_or_caught_up_is_progress_and_standing_still_behind_is_not() -> None:
    first = advance(None, 10, 5, now=100.0)
    assert first.progressed_at == 100.0
    assert advance(first, 10, 5, now=130.0).progressed_at == 100.0  # behind, standing still
    assert advance(first, 11, 5, now=130.0).progressed_at == 130.0  # moved
    assert advance(first, 10, 0, now=130.0).progressed_at == 130.0  # nothing left to do


def test_a_unit_is_stalled_silent_or_ok_by_the_stall_time() -> None:
    entries = {
        "relay": Entry(10, 3, progressed_at=100.0, beat_at=130.0),  # behind 30 s: stalled
        "projector:0": Entry(10, 0, progressed_at=100.0, beat_at=130.0),  # idle, caught up
        "projector:1": Entry(10, 2, progressed_at=125.0, beat_at=130.0),  # behind 5 s
        "alerter": Entry(10, 0, progressed_at=100.0, beat_at=110.0),  # no report for 20 s
    }
    states = {unit: u["state"] for unit, u in assess(entries, 130.0, STALL).items()}
    assert states == {"relay": "stalled", "projector:0": "ok", "projector:1": "ok",
                      "alerter": "silent"}
