"""The restart policy of `salespulse up`'s supervisor: backoff and giving up. Pure."""

from __future__ import annotations

from services.supervisor import RestartPolicy


def test_each_exit_within_the_minute_doubles_the_delay_up_to_its_ceiling() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3, crashes=10, within=60)
    assert [policy.exited(t) for t in (0, 1, 2, 3, 4)] == [0.5, 1, 2, 3, 3]


def test_the_fifth_exit_within_a_minute_gives_up() -> None:
    policy = RestartPolicy(crashes=5, within=60)
    assert all(policy.exited(t) is not None for t in (0, 10, 20, 30))
    assert policy.exited(59) is None and policy.recent == 5


def test_exits_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(first_delay=0.5, crashes=5, within=60)
    for t in (0, 10, 20, 30):
        policy.exited(t)
    # At 70 s the exits at 0 and 10 s are past the minute: this is the third of three.
    assert policy.exited(70) == 2 and policy.recent == 3
    assert policy.exited(1000) == 0.5  # a child that ran for long starts at the first delay
