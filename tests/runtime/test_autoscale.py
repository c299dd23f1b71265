"""Autoscaling on an attached cluster (#14 item 2): actors reserve a CPU each by default there, so they are placed
only on nodes with free CPUs (never the 0-CPU head), an actor that does not fit pends and the driver says how
many do (what makes an autoscaler add nodes), and a pending actor runs once a node is added. The cluster is the
drill's own, in a subprocess (tests/runtime/autoscale_drill.py), not the session's."""

from __future__ import annotations

import json
import subprocess
import sys

from ami.cluster.actor_pool import reserved_cpus
from ami.cluster.config import RuntimeConfig
from tests.runtime.conftest import ROOT, tagged_env


def test_actors_reserve_a_cpu_on_an_attached_cluster_and_none_on_ami_s_own_ray() -> None:
    assert reserved_cpus(RuntimeConfig(), attached=True) == 1.0
    assert reserved_cpus(RuntimeConfig(), attached=False) == 0.0
    assert reserved_cpus(RuntimeConfig(actor_cpus=0.0), attached=True) == 0.0
    assert reserved_cpus(RuntimeConfig(actor_cpus=2.0), attached=False) == 2.0


def test_a_third_actor_pends_on_a_full_cluster_until_a_node_is_added(tmp_path) -> None:
    env, _ = tagged_env()
    done = subprocess.run([sys.executable, "-m", "tests.runtime.autoscale_drill", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-10000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["rc"] == 0, seen["stderr_tail"]
    assert seen["pending_before"] == 1 and seen["live_before"] == 2 and len(seen["no_target_before"]) == 1
    assert seen["progress_says_pending"]  # the progress line: pending=1
    assert seen["pending_after"] == 0 and seen["live_after"] == 3
    assert seen["head"] not in seen["actor_nodes"] and seen["added"] in seen["actor_nodes"]
    assert len(seen["actor_nodes"]) == 2  # the first worker (two actors) and the added node (the third)
    assert set(seen["actor_env_steps"]) == {"0", "1", "2"} and all(n > 0 for n in seen["actor_env_steps"].values())
    assert seen["interrupted"] and seen["env_steps"] == seen["replay_inserted"] == sum(seen["actor_env_steps"].values())
