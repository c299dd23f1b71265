"""The rules of cluster/recovery.py as pure functions: the restart budget is a rate (crashes within a sliding
window, clock injected), and "dead for good" means only "pinned to a node that is no longer alive"."""

from __future__ import annotations

import pytest
import ray

from ami.cluster import cli, recovery
from ami.cluster.config import ConfigError, RunFailed, build
from ami.cluster.recovery import Outage, RestartBudget, alive_nodes, over_budget, pinned_to_dead

HOUR = 3600.0


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_over_budget_counts_only_crashes_inside_the_window() -> None:
    assert not over_budget([0.0, 1.0, 2.0], 3.0, max_restarts=3, window_s=600)
    assert over_budget([0.0, 1.0, 2.0, 3.0], 3.0, max_restarts=3, window_s=600)
    assert not over_budget([0.0, 1.0, 2.0, 700.0], 700.0, max_restarts=3, window_s=600)  # the first three expired
    assert over_budget([5.0], 5.0, max_restarts=0, window_s=1)


def test_a_long_run_survives_crashes_spread_over_time_and_a_crash_loop_stops_it() -> None:
    clock = Clock()
    budget = RestartBudget(max_restarts=3, window_s=600, clock=clock)
    for _ in range(10):  # a spot node lost every hour, for ten hours: each crash alone in its window
        assert budget.crashed("actor 3") == 1
        clock.t += HOUR
    for _ in range(3):
        budget.crashed("actor 3")
        clock.t += 5
    budget.crashed("actor 0")  # another process's crash does not count against actor 3
    with pytest.raises(RunFailed, match=r"^actor 3 crashed 4 times within 600 s \(runtime.max_restarts=3 per "
                                        r"runtime.restart_window_s=600\)") as e:
        budget.crashed("actor 3")
    assert "\n" not in str(e.value) and "--resume" in str(e.value)
    assert len(budget._crashes["actor 3"]) == 4  # only the crashes inside the window are kept


def test_a_crash_just_outside_the_window_no_longer_counts() -> None:
    clock = Clock()
    budget = RestartBudget(max_restarts=1, window_s=60, clock=clock)
    budget.crashed("the learner")
    clock.t += 60
    assert budget.crashed("the learner") == 1
    clock.t += 59
    with pytest.raises(RunFailed):
        budget.crashed("the learner")


def test_dead_for_good_only_when_pinned_to_a_node_that_is_gone(monkeypatch) -> None:
    assert pinned_to_dead("n2", ["n1"]) and not pinned_to_dead("n1", ["n1", "n2"])
    assert not pinned_to_dead(None, [])  # not pinned: Ray restarts it anywhere
    monkeypatch.setattr(ray, "nodes", lambda: [{"NodeID": "n1", "Alive": True}, {"NodeID": "n2", "Alive": False}])
    assert alive_nodes() == ["n1"]
    assert "_private" not in open(recovery.__file__).read()  # public Ray APIs only


def test_restart_window_must_be_positive() -> None:
    assert build([]).runtime.restart_window_s > 0
    with pytest.raises(ConfigError, match="restart_window_s"):
        build([{"runtime": {"restart_window_s": 0}}])


def test_a_failed_run_is_one_line_and_exit_1(monkeypatch, capsys, tmp_path) -> None:
    from ami.cluster import inline

    def crash_loop(*a, **k):
        raise RunFailed("actor 1 crashed 4 times within 600 s\n(a crash loop)")

    monkeypatch.setattr(inline, "train_inline", crash_loop)
    assert cli.main(["train", "--backend", "inline", "--steps", "10", "--run-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == "ami: error: actor 1 crashed 4 times within 600 s (a crash loop)\n"


def test_an_outage_is_reported_once_when_it_lasts_and_once_when_it_ends() -> None:
    clock = Clock()
    redis = Outage("Redis", warn_after_s=10, clock=clock)
    assert redis.update(True) is None and redis.down_s == 0
    assert redis.update(False) is None  # a blip: no line
    clock.t += 3
    assert redis.update(True) is None and redis.since is None
    assert redis.update(False) is None
    lines = []
    for _ in range(90):  # a 90 s outage, looked at every second
        clock.t += 1
        lines.append(redis.update(False))
    assert redis.down_s == 90 and [x for x in lines if x] == [
        "ami: warning: Redis unreachable for 10 s; actors and the learner wait for it, and the run goes on once it "
        "is back"]
    assert redis.update(True) == "ami: Redis answers again after 90 s; the run goes on" and redis.down_s == 0
