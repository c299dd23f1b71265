"""A real 2-actor Ray run on the session's 2-node cluster with a real redis-server: run-directory contract,
step accounting against actors and replay, versions on every stored segment, weight broadcast and lag,
placement across nodes, and adding an actor to a running run with `ami scale` and removing it again."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import redis

from ami.cluster.cli import main
from ami.cluster.rundir import SUMMARY_KEYS
from ami.memory.codec import decode_segment
from tests.chaos.conftest import scrape, targets
from tests.runtime.conftest import TINY
from tests.util import wait_for


@pytest.fixture(scope="module")
def two_actor_run(ray_cluster, redis_server, tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("ray") / "two-actors"
    rc = main(["train", "--backend", "ray", "--actors", "2", "--steps", "600", "--run-dir", str(run),
               "--redis-url", redis_server.url, *TINY])
    assert rc == 0
    return run, json.loads((run / "summary.json").read_text())


def test_summary_and_metrics_follow_the_run_directory_contract(two_actor_run) -> None:
    run, s = two_actor_run
    assert set(SUMMARY_KEYS) <= set(s) and s["backend"] == "ray" and not s["interrupted"]
    assert s["env_id"] == "Pendulum-v1" and s["seed"] == 3
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"env_steps", "updates", "wall_seconds"} <= set(m) for m in lines)
    evals = [m for m in lines if "eval_return_mean" in m]
    assert evals and evals[-1]["env_steps"] == 600 and all("eval_return_std" in m for m in evals)
    assert s["eval_return_mean"] == evals[-1]["eval_return_mean"]
    assert (run / "checkpoints" / "latest.pt").exists() and (run / "config.yaml").exists()
    assert not (run / "running.json").exists()


def test_env_steps_equal_actor_sum_and_replay_inserts(two_actor_run) -> None:
    _, s = two_actor_run
    per_actor = s["actor_env_steps"]
    assert len(per_actor) == 2 and all(n > 0 for n in per_actor.values())
    assert s["env_steps"] == 600 == sum(per_actor.values()) == s["replay_inserted_transitions"]
    assert s["updates"] == 600 - 150 + 1  # the replay ratio of the inline backend, settled at the end
    assert s["weights_version"] == s["updates"] // 10


def test_every_stored_segment_carries_an_acting_version(two_actor_run, redis_server) -> None:
    _, s = two_actor_run
    client = redis.Redis.from_url(redis_server.url)
    keys = [k for k in client.scan_iter(match="ami:two-actors-*:replay:seg:*", count=1000)]
    segs = [decode_segment(client.get(k)) for k in keys]
    client.close()
    assert sum(len(g) for g in segs) == 600
    versions = {g.meta.policy_version for g in segs}
    assert all(0 <= v <= s["weights_version"] for v in versions)
    assert {g.meta.actor_id for g in segs} == {0, 1}
    assert versions == set(s["versions_used"])


def test_learner_published_versions_that_actors_used_with_bounded_lag(two_actor_run) -> None:
    _, s = two_actor_run
    assert s["weights_version"] >= 2
    assert len([v for v in s["versions_used"] if v > 0]) >= 2  # actors acted with several published snapshots
    assert s["policy_lag_max"] <= 5 and s["policy_lag_mean"] <= 2
    assert s["broadcast_latency_p50_ms"] is not None and s["broadcast_latency_p50_ms"] < 2000


def test_actors_spread_over_both_nodes(two_actor_run, ray_cluster) -> None:
    import ray

    _, s = two_actor_run
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2 and set(s["actor_nodes"]) == nodes


def test_scale_adds_an_actor_then_scale_down_kills_it_and_counts_its_steps_once(ray_cluster, redis_server,
                                                                                 tmp_path: Path, monkeypatch) -> None:
    """`ami scale` 1 -> 2 -> 1: the added actor steps, then its process is killed while the run goes on (not kept,
    idle, until the run ends: its /metrics endpoint stops answering), and its steps count once in summary.json."""
    run, steps, sd = tmp_path / "scaled", 1200, tmp_path / "sd"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))  # where the actors' endpoints are announced
    out: dict = {}
    args = ["train", "--backend", "ray", "--actors", "1", "--steps", str(steps), "--run-dir", str(run),
            "--redis-url", redis_server.url, *TINY, "runtime.poll_s=0.1"]
    t = threading.Thread(target=lambda: out.setdefault("rc", main(args)))
    t.start()
    wait_for(lambda: (run / "running.json").exists(), 60, "running.json")
    assert main(["scale", str(run), "--actors", "2"]) == 0
    wait_for(lambda: 1 in stored(redis_server.url)[1], 90, "a segment of the added actor 1")
    # (process ids would not do: other Ray clusters may run on this machine; the driver publishes the endpoint at
    # its next poll, which may come after the actor's first segment)
    address = wait_for(lambda: targets(sd).get("actor1"), 10, "actor 1's endpoint discovered")
    assert scrape(address)
    assert main(["scale", str(run), "--actors", "1"]) == 0
    wait_for(lambda: not scrape(address), 30, "actor 1's process killed")
    assert stored(redis_server.url)[0] < steps and t.is_alive()  # killed mid-run, not at the end
    t.join(180)
    assert out.get("rc") == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["actors"] == 2 and all(n > 0 for n in s["actor_env_steps"].values())
    assert s["env_steps"] == steps == sum(s["actor_env_steps"].values()) == s["replay_inserted_transitions"]
    assert set(s["actor_env_steps"]) == {"0", "1"} and not (run / "running.json").exists()


def stored(url: str) -> tuple[int, set[int]]:
    """Transitions stored by the `scaled` run so far, and the actors that stored them."""
    client = redis.Redis.from_url(url)
    segs = [decode_segment(client.get(k)) for k in client.scan_iter(match="ami:scaled-*:replay:seg:*", count=1000)]
    client.close()
    return sum(len(g) for g in segs), {g.meta.actor_id for g in segs}
