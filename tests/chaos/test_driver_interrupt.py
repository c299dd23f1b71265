"""SIGINT (Ctrl-C) or SIGTERM (Kubernetes, `ray job stop`) an `ami train` attached to the session's cluster, with
its private redis-server: a clean stop with a final checkpoint and summary, and nothing of the run left: no
redis-server, no ami process, no live Ray actor of the run in the cluster, no discovery file. (SIGTERM without
ami's own handler, installed after `ray.init`, meets Ray's, which exits at once: no final checkpoint, no
summary.json.)"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.chaos.conftest import CHAOS, driver_metric, wait_for
from tests.chaos.test_redis_death import redis_children
from tests.runtime.conftest import AMI, tagged_env, tagged_processes


def live_run_actors() -> list[str]:
    from ray._private.state import actors

    return [a["ActorClassName"] for a in actors().values()
            if a["State"] != "DEAD" and a["ActorClassName"] in ("ActorWorker", "LearnerActor", "EvaluatorActor")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_stops_cleanly_with_a_final_checkpoint_and_leaves_nothing_running(ray_cluster, tmp_path,
                                                                                       sig: int) -> None:
    run, sd = tmp_path / "interrupted", tmp_path / "sd"
    env, tag = tagged_env()
    p = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "2", "--steps", "1000000", "--run-dir",
                          str(run), "--ray-address", ray_cluster.address, *CHAOS],
                         cwd=tmp_path, env={**env, "AMI_PROMETHEUS_SD_DIR": str(sd)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (run / "checkpoints" / "latest.pt").exists() and (driver_metric(
            sd, "ami_driver_env_steps") or 0) >= 300, 90, "a checkpoint")
        (redis_pid,) = redis_children(p.pid)  # (redis-server rewrites its environment: no tag to find)
        assert live_run_actors()
        before = (run / "checkpoints" / "latest.pt").stat().st_mtime_ns
        p.send_signal(sig)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-3000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["interrupted"] and s["env_steps"] == json.loads(out.strip().splitlines()[-1])["env_steps"] > 0
    assert (run / "checkpoints" / "latest.pt").stat().st_mtime_ns > before  # the final checkpoint
    assert not (run / "running.json").exists()
    time.sleep(0.5)
    assert tagged_processes(tag) == [] and not Path(f"/proc/{redis_pid}").exists()  # no ami, no redis-server
    assert live_run_actors() == [] and list(sd.glob("*.json")) == []
