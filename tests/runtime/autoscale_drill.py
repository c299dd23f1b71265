"""The autoscaling drill's cluster and run, in a process of its own (tests/runtime/test_autoscale.py starts it;
a throwaway cluster inside the pytest session once broke the session's own): a Ray cluster whose head has no
CPUs and whose one worker has two, and `ami train --ray-address` with three actors at the default
runtime.actor_cpus (one each on an attached cluster). Two actors fit and run, the third pends (the driver says
so) until a node with a CPU is added; then it runs too. The run is stopped with SIGTERM. Prints one JSON object:
what it saw, for the test to judge.

    python -m tests.runtime.autoscale_drill TMP_DIR
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ray.cluster_utils import Cluster

from tests.chaos.conftest import driver_metric, metric, targets
from tests.runtime.conftest import AMI, TINY, tagged_env
from tests.util import wait_for

DEFAULT_CPUS = [a for a in TINY if not a.startswith("runtime.actor_cpus=") and a != "--no-progress"]


def actor_steps(sd: Path, i: int) -> float:
    return metric(targets(sd).get(f"actor{i}"), "ami_actor_env_steps_total") or 0.0


def gauges(sd: Path) -> tuple[float | None, float | None]:
    """The driver's (pending, live) actor gauges."""
    return driver_metric(sd, "ami_driver_pending_actors"), driver_metric(sd, "ami_driver_live_actors")


def ray_log_tails(logs: Path, lines: int = 5) -> str:
    """The last lines of the cluster's non-empty error logs (raylets, GCS, workers)."""
    out = []
    for f in sorted(logs.glob("*.err")):
        said = [s for s in f.read_text(errors="replace").splitlines() if s.strip() and not s.startswith(":")]
        if said:  # (a worker's log opens with ':job_id:...' header lines even when it says nothing)
            out.append(f"== {f.name}\n" + "\n".join(said[-lines:]))
    return "\n".join(out)[-6000:]


def drill(tmp: Path) -> dict:
    sd, run = tmp / "sd", tmp / "autoscaled"
    # Ray starts its workers at nice 15 (worker_niceness): beside busy nice-0 processes (training runs on a dev box)
    # an actor's process got 1 s of CPU in a minute; the drill measures placement, not priority. The raylets this
    # process starts read it.
    os.environ["RAY_worker_niceness"] = "0"
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False})
    p = None
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        env, _ = tagged_env()
        p = subprocess.Popen([*AMI, "train", "--backend", "ray", "--actors", "3", "--steps", "1000000", "--run-dir",
                              str(run), "--ray-address", cluster.address, *DEFAULT_CPUS, "runtime.poll_s=0.1"],
                             cwd=tmp, env={**env, "AMI_PROMETHEUS_SD_DIR": str(sd)}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        # which two of the three get the worker's CPUs is Ray's choice (actors are created at once, SPREAD)
        wait_for(lambda: sum(actor_steps(sd, i) > 0 for i in range(3)) >= 2, 120, "two actors stepping")
        time.sleep(2)  # (20 polls more: the third actor is still waiting, not slow to start)
        seen = {"pending_before": driver_metric(sd, "ami_driver_pending_actors"),
                "live_before": driver_metric(sd, "ami_driver_live_actors"),
                "no_target_before": [i for i in range(3) if f"actor{i}" not in targets(sd)]}
        added = cluster.add_node(num_cpus=1)
        wait_for(lambda: all(actor_steps(sd, i) > 0 for i in range(3)), 120, "the third actor stepping on the new node")
        # (the live gauge is refreshed once a second, the pending one every poll)
        seen["pending_after"], seen["live_after"] = wait_for(lambda: gauges(sd) == (0.0, 3.0) and gauges(sd), 10,
                                                             "the driver's gauges: 0 pending, 3 live")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
        s = json.loads((run / "summary.json").read_text())
        return {**seen, "rc": p.returncode, "stderr_tail": err[-2000:], "head": cluster.head_node.node_id,
                "added": added.node_id, "actor_nodes": s["actor_nodes"], "actor_env_steps": s["actor_env_steps"],
                "env_steps": s["env_steps"], "replay_inserted": s["replay_inserted_transitions"],
                "interrupted": s["interrupted"], "progress_says_pending": "pending=1" in err}
    except AssertionError:
        # (the run's own words and the cluster's error logs say why; the test prints this stderr)
        if p is not None:
            p.kill()
            print(p.communicate()[1][-3000:], file=sys.stderr)
        print(ray_log_tails(Path(cluster.head_node.get_logs_dir_path())), file=sys.stderr)
        raise
    finally:
        if p is not None and p.poll() is None:
            p.kill()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(drill(Path(sys.argv[1]))))
