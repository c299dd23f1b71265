"""Ctrl-C and resume: a SIGINT to the whole process group of `ami train --backend ray` (its own local Ray and
private redis-server) stops it cleanly with a checkpoint, summary.json and no process left behind; `--resume`
continues env steps, updates, episodes and the weights version from that checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from ami.cluster.cli import main
from tests.runtime.conftest import AMI, TINY, tagged_env, tagged_processes


def test_ctrl_c_then_resume_continues_counters_and_version(ray_cluster, tmp_path: Path) -> None:
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

    target = first["env_steps"] + 300
    assert main(["train", "--resume", str(run), "--steps", str(target), "--no-progress"]) == 0
    second = json.loads((run / "summary.json").read_text())
    assert second["env_steps"] == target and sum(second["actor_env_steps"].values()) == 300
    assert second["updates"] >= first["updates"] and second["weights_version"] >= first["weights_version"]
    assert second["episodes"] >= first["episodes"] and second["wall_seconds"] > first["wall_seconds"]
    assert min(v for v in second["versions_used"]) >= first["weights_version"]  # acted with resumed weights
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["env_steps"] == target
