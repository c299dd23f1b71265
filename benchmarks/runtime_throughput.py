"""Ray runtime figures (benchmarks/RESULTS.md, "## Runtime (#4)"): env steps/s with 1 and 2 actors, snapshot
broadcast latency (publish -> acting) p50/p90 for the default model and a ~10 MB model, policy lag, learner
updates/s. Each configuration is a real `ami train --backend ray` run (local Ray, private redis-server).

    .venv/bin/python benchmarks/runtime_throughput.py [--steps 3000] [--only scaling|broadcast]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ami.cluster.cli import main  # noqa: E402

COMMON = ["--env", "Pendulum-v1", "--seed", "0", "--no-progress", "run.eval_episodes=1", "run.log_every=1000"]


def run(args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["train", "--backend", "ray", "--run-dir", f"{d}/run", *COMMON, *args]) == 0
        return json.loads(out.getvalue().strip().splitlines()[-1])


def scaling(steps: int) -> None:
    # acting only (updates_per_step=0): what the actors alone can collect, planning with the default budget
    rates = {}
    for k in (1, 2):
        s = run(["--actors", str(k), "--steps", str(steps), f"run.eval_every={steps}",
                 "learner.updates_per_step=0", "learner.warmup_steps=0"])
        rates[k] = s["env_steps_per_s"]
        print(f"actors={k}: {rates[k]:.1f} env steps/s ({s['actor_env_steps']})", flush=True)
    print(f"scaling efficiency 2 vs 1: {rates[2] / (2 * rates[1]):.0%}")


def broadcast(steps: int) -> None:
    models = {"default": [], "10MB": ["agent.world_model.hidden=512", "agent.encoder.hidden=512",
                                      "run.plan_evals=64"]}
    for name, extra in models.items():
        s = run(["--actors", "2", "--steps", str(steps), f"run.eval_every={steps}", "learner.warmup_steps=500",
                 "learner.batch_size=64", "learner.snapshot_every=10", "learner.updates_per_step=0.5",
                 "runtime.version_check_every=1", *extra])
        keys = ("weights_mb", "broadcast_latency_p50_ms", "broadcast_latency_p90_ms", "policy_lag_mean",
                "policy_lag_max", "updates_per_s", "learner_busy_fraction", "env_steps_per_s", "weights_version",
                "actor_paused_s")
        print(name, json.dumps({k: (round(s[k], 3) if isinstance(s[k], float) else s[k]) for k in keys}),
              flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--only", choices=["scaling", "broadcast"])
    a = ap.parse_args()
    if a.only != "broadcast":
        scaling(a.steps)
    if a.only != "scaling":
        broadcast(a.steps)
