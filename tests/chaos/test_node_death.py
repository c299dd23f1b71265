"""Remove the worker node of the session's 2-node cluster in the middle of a real run: the actors (and the learner
or evaluator) that lived there come back on the remaining node and the run completes with every step stored once.
Also a node whose raylet died just before the run (Ray still counts it alive, so work is placed there): the run
completes all the same. The node is added back afterwards, so later tests see two nodes again."""

from __future__ import annotations

import os
import signal
import time

from tests.chaos.conftest import CHAOS, Train, driver_metric, stored_steps, summary, two_live_nodes, wait_for

STEPS = 1200


def test_worker_node_removed_mid_run_actors_move_and_the_run_completes(ray_cluster, redis_server, tmp_path,
                                                                       monkeypatch) -> None:
    sd, run = tmp_path / "sd", tmp_path / "node-death"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))
    train = Train(["train", "--backend", "ray", "--actors", "2", "--steps", str(STEPS), "--run-dir", str(run),
                   "--redis-url", redis_server.url, *CHAOS])
    try:
        wait_for(lambda: (driver_metric(sd, "ami_driver_env_steps") or 0) >= 400, 90, "400 steps")
        (worker,) = ray_cluster.worker_nodes
        ray_cluster.remove_node(worker, allow_graceful=False)
        assert train.join() == 0
    finally:
        two_live_nodes(ray_cluster)
    s = summary(run)
    head = ray_cluster.head_node.node_id
    assert s["restarts"]["actor"] >= 1 and s["actor_nodes"] == [head]  # moved to the node that is left
    assert s["env_steps"] == STEPS == stored_steps(redis_server.url, run.name)[0] == s["replay_inserted_transitions"]
    assert set(s["actor_env_steps"]) == {"0", "1"}


def test_a_node_dead_before_the_run_starts_and_the_run_still_completes(ray_cluster, redis_server, tmp_path,
                                                                       monkeypatch) -> None:
    """The learner and actors placed on a node whose raylet is already dead are restarted on the head. The
    restored learner must count the steps the replay holds by then, or the actors (which pace on their claims)
    wait for updates it never thinks it owes: without that, this run hung here (and the node drill in CI)."""
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(tmp_path / "sd"))
    run = tmp_path / "dead-before"
    (worker,) = ray_cluster.worker_nodes
    os.kill(worker.all_processes["raylet"][0].process.pid, signal.SIGKILL)
    time.sleep(2)  # dead, and still counted alive for a while
    try:
        # one update per step, as the hang needed: the gap the actors wait on must pass runtime.max_update_lag
        train = Train(["train", "--backend", "ray", "--actors", "2", "--steps", str(STEPS), "--run-dir", str(run),
                       "--redis-url", redis_server.url, *CHAOS, "learner.updates_per_step=1"])
        assert train.join() == 0
    finally:
        two_live_nodes(ray_cluster)
    s = summary(run)
    assert s["env_steps"] == STEPS == stored_steps(redis_server.url, run.name)[0]
    assert s["updates"] == STEPS - 150 + 1  # the replay ratio holds through the restore
