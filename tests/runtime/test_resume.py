"""Ctrl-C and resume: a SIGINT to the whole process group of `ami train --backend ray` (its own local Ray and
private redis-server) stops it cleanly with a checkpoint, summary.json and no process left behind; `--resume`
continues env steps, updates, episodes and the weights version from that checkpoint, and its learner survives a
SIGKILL (Ray must find the checkpoint it was built from again: passed inline, it was freed once the learner was
up, and the resumed run hung without a learner)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.chaos.conftest import Train, driver_metric, ray_pids, wait_for
from tests.runtime.conftest import AMI, TINY, tagged_env, tagged_processes


def test_ctrl_c_then_resume_continues_counters_and_version(ray_cluster, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    env, tag = tagged_env()
    p = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "2", "--steps", "100000",
                          "--run-dir", str(run), *TINY, "runtime.num_cpus=2"], cwd=tmp_path, env=env,
                         start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoints" / "latest.pt").exists() and time.time() < deadline:
            assert p.poll() is None, p.communicate()
            time.sleep(0.1)
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, err
    first = json.loads((run / "summary.json").read_text())
    assert first["interrupted"] and first["weights_version"] >= 1 and 0 < first["env_steps"] < 100000
    assert json.loads(out.strip().splitlines()[-1])["env_steps"] == first["env_steps"]
    time.sleep(0.5)
    assert tagged_processes(tag) == []
    assert not (run / "running.json").exists()

    target, sd = first["env_steps"] + 900, tmp_path / "sd"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))
    train = Train(["train", "--resume", str(run), "--steps", str(target), "--no-progress"])
    wait_for(lambda: (driver_metric(sd, "ami_driver_env_steps") or 0) >= first["env_steps"] + 300, 90, "300 steps")
    (learner,) = ray_pids("LearnerActor")
    os.kill(learner, signal.SIGKILL)
    assert train.join() == 0
    second = json.loads((run / "summary.json").read_text())
    assert second["restarts"]["learner"] == 1 and len(second["recoveries"]) == 1
    assert second["env_steps"] == target and sum(second["actor_env_steps"].values()) == 900
    assert second["updates"] >= first["updates"] and second["weights_version"] >= first["weights_version"]
    assert second["episodes"] >= first["episodes"] and second["wall_seconds"] > first["wall_seconds"]
    assert min(v for v in second["versions_used"]) >= first["weights_version"]  # acted with resumed weights
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["env_steps"] == target
