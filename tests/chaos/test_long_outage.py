"""A 90 s outage of an external Redis (stopped, then started again on the same port with its AOF) in the middle of
a real run on the session's cluster: actors and learner wait with backoff, the driver reports the outage (metric
and one stderr line each way), and the run completes with every step stored once. Too long for CI: `make drills`
runs it (AMI_DRILLS=1)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ami.memory.config import EmbeddedRedisConfig
from ami.memory.embedded import EmbeddedRedis
from tests.chaos.conftest import CHAOS, driver_metric, stored_steps, summary, wait_for
from tests.runtime.conftest import AMI, tagged_env

OUTAGE_S, STEPS = 90, 1500

pytestmark = pytest.mark.skipif(os.environ.get("AMI_DRILLS") != "1", reason="a 90 s drill: `make drills`")


def test_a_90_s_redis_outage_does_not_end_the_run(ray_cluster, tmp_path) -> None:
    server = EmbeddedRedis(EmbeddedRedisConfig(dir=str(tmp_path / "redis"), appendonly=True,
                                               appendfsync="everysec"))
    url = server.start()
    run, sd, err = tmp_path / "outage", tmp_path / "sd", tmp_path / "stderr"
    env = {**tagged_env()[0], "AMI_PROMETHEUS_SD_DIR": str(sd), "AMI_REDIS_URL": url}
    with open(err, "w") as e:
        p = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "2", "--steps", str(STEPS),
                              "--run-dir", str(run), "--ray-address", ray_cluster.address, *CHAOS], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=e, text=True)
    try:
        wait_for(lambda: (driver_metric(sd, "ami_driver_env_steps") or 0) >= 300, 120, "300 steps")
        server.stop()  # a clean shutdown: the AOF has every acknowledged write
        t0 = time.monotonic()
        wait_for(lambda: (driver_metric(sd, "ami_driver_redis_unreachable_seconds") or 0) >= 60, OUTAGE_S,
                 "the driver reporting a 60 s outage")
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t0)))
        assert p.poll() is None, err.read_text()[-3000:]  # still running after 90 s without Redis
        assert "Redis unreachable for" in err.read_text()
        server.start()  # same port, same directory: the AOF brings the replay back
        out, _ = p.communicate(timeout=300)
        n, segs = stored_steps(url, run.name)
    finally:
        if p.poll() is None:
            p.kill()
        server.stop()
    log = err.read_text()
    assert p.returncode == 0, log[-3000:]
    assert "Redis answers again after" in log
    s = summary(run)
    # (actors paused on the learner, which cannot sample without Redis, or retried their budget claims)
    assert s["env_steps"] == STEPS == n == s["replay_inserted_transitions"]
    keys = [(g.meta.actor_id, g.meta.episode_id, g.meta.first_step) for g in segs]
    assert len(keys) == len(set(keys))  # nothing stored twice
