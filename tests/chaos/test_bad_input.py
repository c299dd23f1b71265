"""Bad input during and before a run: a foreign client writes garbage and a pickle payload into the replay
namespace of a running `ami train` (skipped, counted in the learner's metrics, never unpickled; the run
completes), and a malformed YAML config is one line on stderr and exit 2."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import redis

from tests.chaos.conftest import CHAOS, Train, driver_metric, metric, summary, targets, wait_for
from tests.runtime.conftest import AMI, tagged_env, tagged_processes


def pickle_payload(path: str) -> bytes:
    """Protocol-0 pickle that runs `touch path` when unpickled (hand-written: no pickle module here)."""
    return f"cos\nsystem\n(S'touch {path}'\ntR.".encode()


def test_garbage_and_pickle_in_the_replay_of_a_running_run_are_skipped_and_counted(ray_cluster, redis_server,
                                                                                   tmp_path, monkeypatch) -> None:
    sd, run = tmp_path / "sd", tmp_path / "bad-replay"
    monkeypatch.setenv("AMI_PROMETHEUS_SD_DIR", str(sd))
    marker = Path(f"/tmp/ami-pickle-side-effect-{uuid.uuid4().hex}")
    train = Train(["train", "--backend", "ray", "--actors", "2", "--steps", "900", "--run-dir", str(run),
                   "--redis-url", redis_server.url, *CHAOS])
    wait_for(lambda: (driver_metric(sd, "ami_driver_env_steps") or 0) >= 300 and "learner" in targets(sd), 90,
             "300 steps")
    client = redis.Redis.from_url(redis_server.url)
    (idx,) = list(client.scan_iter(match=f"ami:{run.name}-*:replay:idx"))
    ns = idx.decode()[: -len(":idx")]
    newest = sorted(int(k.rsplit(b":", 1)[1]) for k in client.scan_iter(match=f"{ns}:seg:*") if k[-1:].isdigit())
    client.set(f"{ns}:seg:{newest[-1]}", pickle_payload(str(marker)))  # a stored segment replaced by a pickle
    client.set(f"{ns}:seg:{newest[-2]}", uuid.uuid4().bytes * 20)  # and one by garbage
    client.zadd(f"{ns}:idx", {b"\x80\x04not-an-entry": 1e12})  # an index entry that is no entry
    client.set(f"{ns}:seg:stray", pickle_payload(str(marker)))
    learner = targets(sd)["learner"]
    wait_for(lambda: (metric(learner, "ami_replay_corrupt_skipped_total") or 0) >= 1, 60, "corrupt counted")
    assert train.join() == 0
    client.close()
    assert not marker.exists()  # never unpickled
    assert summary(run)["env_steps"] == 900


def test_malformed_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("run:\n  steps: [1, 2\n  env_id: : :\n")
    env, tag = tagged_env()
    res = subprocess.run([*AMI, "train", "--backend", "ray", "--config", "bad.yaml", "--run-dir", "out"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("ami: error:"), res.stderr
    assert not (tmp_path / "out").exists() and tagged_processes(tag) == []
