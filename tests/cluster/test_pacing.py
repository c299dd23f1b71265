"""The runtime's rules of time (learner/pacing.py), which both backends follow."""

from __future__ import annotations

from ami.learner.pacing import Every, updates_owed, vector_steps_left


def test_every_marks_each_multiple_at_the_first_poll_past_it() -> None:
    e = Every(50)
    assert [e.due(x) for x in (0, 49, 50, 51, 99)] == [0, 0, 1, 0, 0]
    assert e.due(103) == 1 and e.due(151) == 1  # counters that advance 3 at a time still mark every multiple
    assert e.due(420) == 5  # 200..400 crossed in one poll: one event marks all five
    assert e.due(410) == 0 and e.due(430) == 0 and e.due(450) == 1
    assert e.due(120) == 0 and e.due(150) == 1  # went back (a restored learner): the schedule goes on from there
    resumed = Every(50, start=260)
    assert resumed.due(299) == 0 and resumed.due(300) == 1
    assert Every(0).due(10**6) == 0  # 0: never


def test_updates_owed_follow_the_replay_ratio_after_warm_up() -> None:
    assert updates_owed(999, 1000, 1.0) == 0
    assert updates_owed(1000, 1000, 1.0) == 1 and updates_owed(1599, 1000, 1.0) == 600
    assert updates_owed(1799, 1000, 0.25) == 200
    # a burst owed at once when warm-up ends, then the ratio again
    assert updates_owed(999, 1000, 1.0, 1000) == 0 and updates_owed(1000, 1000, 1.0, 1000) == 1001


def test_a_step_count_no_multiple_of_the_envs_stops_below_it() -> None:
    assert vector_steps_left(0, 31, 2) == 15 and vector_steps_left(30, 31, 2) == 0
    assert vector_steps_left(40, 31, 2) == 0 and vector_steps_left(28, 32, 2) == 2
