"""SIGKILL an actor's or the learner's worker process in the middle of a real run on the session's 2-node
cluster: Ray restarts it, the driver resumes its work, the run completes with every step stored exactly once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from tests.chaos.conftest import CHAOS, Train, driver_metric, metric, ray_pids, stored_steps, summary, targets, wait_for

STEPS = 1200


def start(run: Path, url: str) -> Train:
    """One update per step (CHAOS has 0.25): the learner paces the run, so what a drill waits for after its kill
    lands well before the last step — the killed learner counted back (at 0.25 the resumed run of test_resume once
    ended first), the restarted actor's new endpoint (at 0.25 a CI run once ended before it was read)."""
    return Train(["train", "--backend", "ray", "--actors", "2", "--steps", str(STEPS), "--run-dir", str(run),
                  "--redis-url", url, *CHAOS, "learner.updates_per_step=1"])


def test_actor_sigkill_restarts_reads_newest_weights_and_counts_each_step_once(ray_cluster, redis_server,
                                                                                 tmp_path, monkeypatch) -> None:
    sd, run = tmp_path / "sd", tmp_path / "actor-death"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))
    train = start(run, redis_server.url)
    wait_for(lambda: (driver_metric(sd, "ami_driver_env_steps") or 0) >= 400 and len(targets(sd)) == 4, 90,
             "400 steps with 4 targets")
    before = targets(sd)
    version = metric(before["learner"], "ami_learner_weights_version")
    assert version and version >= 1
    victim = ray_pids("ActorWorker")
    assert len(victim) == 2
    os.kill(victim[0], signal.SIGKILL)
    wait_for(lambda: driver_metric(sd, "ami_driver_restarts_total", process="actor") == 1.0, 60, "restart in metrics")
    moved = wait_for(lambda: [k for k, a in targets(sd).items() if k.startswith("actor") and a != before[k]], 60,
                     "the restarted actor's new endpoint")
    acting = wait_for(lambda: metric(targets(sd)[moved[0]], "ami_actor_weights_version"), 30, "its version")
    assert acting >= version  # the new incarnation acts with the newest snapshot, not the initial weights
    assert train.join() == 0
    s = summary(run)
    n, segs = stored_steps(redis_server.url, run.name)
    assert s["restarts"]["actor"] == 1 and s["restarts"]["learner"] == 0
    assert s["env_steps"] == STEPS == n == s["replay_inserted_transitions"]  # nothing lost, nothing twice
    assert all(n > 0 for n in s["actor_env_steps"].values())
    assert {g.meta.actor_id for g in segs} == {0, 1}
    # the restarted incarnation numbers its episodes past the crashed one's: no (actor, episode, step) twice
    keys = [(g.meta.actor_id, g.meta.episode_id, g.meta.first_step) for g in segs]
    assert len(keys) == len(set(keys))
    assert len({g.meta.episode_id >> 32 for g in segs}) == 3  # 2 first incarnations + 1 restart


def test_learner_sigkill_restores_last_checkpoint_versions_never_reused(ray_cluster, redis_server, tmp_path,
                                                                         monkeypatch) -> None:
    sd, run = tmp_path / "sd", tmp_path / "learner-death"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))
    train = start(run, redis_server.url)
    wait_for(lambda: (run / "checkpoints" / "latest.pt").exists() and (driver_metric(
        sd, "ami_driver_env_steps") or 0) >= 450, 90, "a checkpoint and 450 steps")
    client = redis.Redis.from_url(redis_server.url)
    key = next(client.scan_iter(match=f"ami:{run.name}-*:version"))
    published = int(client.get(key))
    (pid,) = ray_pids("LearnerActor")
    actors = sorted(ray_pids("ActorWorker"))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: driver_metric(sd, "ami_driver_restarts_total", process="learner") == 1.0, 60, "learner restored")
    assert sorted(ray_pids("ActorWorker")) == actors  # the actors lived on through the learner's crash
    assert train.join() == 0
    client.close()
    s = summary(run)
    (rec,) = s["recoveries"]
    assert s["restarts"]["learner"] == 1 and s["restarts"]["actor"] == 0
    assert rec["version_after"] > published  # the first version after the crash is new
    assert rec["updates_before"] - rec["updates_after"] <= 50 + 2 * 10  # one checkpoint interval (+ a chunk)
    assert s["weights_version"] > rec["version_after"]
    assert s["env_steps"] == STEPS == stored_steps(redis_server.url, run.name)[0]
    assert s["updates"] == STEPS - 150 + 1  # the updates lost are redone: the replay ratio holds at the end
    lines = [m for m in map(__import__("json").loads, (run / "metrics.jsonl").read_text().splitlines())
             if "weights_version" in m]
    assert all(a["weights_version"] <= b["weights_version"] for a, b in zip(lines, lines[1:], strict=False))
