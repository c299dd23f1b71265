"""Remove the worker node of the session's 2-node cluster in the middle of a real run: the actors (and the learner
or evaluator) that lived there come back on the remaining node and the run completes with every step stored once.
The node is added back afterwards, so later tests see two nodes again."""

from __future__ import annotations

from tests.chaos.conftest import CHAOS, Train, free_port, metric, stored_steps, summary, wait_for

STEPS = 1200


def test_worker_node_removed_mid_run_actors_move_and_the_run_completes(ray_cluster, redis_server, tmp_path,
                                                                       monkeypatch) -> None:
    import ray

    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(tmp_path / "sd"))
    run, port = tmp_path / "node-death", free_port()
    drv = f"127.0.0.1:{port}"
    train = Train(["train", "--backend", "ray", "--actors", "2", "--steps", str(STEPS), "--run-dir", str(run),
                   "--redis-url", redis_server.url, "--metrics-port", str(port), *CHAOS])
    try:
        wait_for(lambda: (metric(drv, "ami_driver_env_steps") or 0) >= 400, 90, "400 steps")
        (worker,) = ray_cluster.worker_nodes
        ray_cluster.remove_node(worker, allow_graceful=False)
        assert train.join() == 0
    finally:
        if len([n for n in ray.nodes() if n["Alive"]]) < 2:
            ray_cluster.add_node(num_cpus=1)
            ray_cluster.wait_for_nodes()
    s = summary(run)
    head = ray_cluster.head_node.node_id
    assert s["restarts"]["actor"] >= 1 and s["actor_nodes"] == [head]  # moved to the node that is left
    assert s["env_steps"] == STEPS == stored_steps(redis_server.url, run.name)[0] == s["replay_inserted_transitions"]
    assert set(s["actor_env_steps"]) == {"0", "1"}
