"""Sample efficiency: eval return (10 greedy episodes) at 5k, 10k and 20k env steps for Pendulum-v1 and
CartPole-v1 over 3 seeds, with wall-clock; medians over seeds.

    python benchmarks/learning_curves.py [--envs Pendulum-v1 CartPole-v1] [--seeds 0 1 2] [--parallel 2]
                                         [--backend inline|ray] [--actors 2] [--out runs/bench]
                                         [extra key=value overrides]

Each run is a real `ami train` process (inline: one torch thread; ray: K actors, a learner and a private
redis-server); `--parallel` runs share the box. The Ray backend evaluates when the actors' step count crosses a
multiple of 5000, so its evaluation at "10k" is the first one taken at or after 10000 steps (usually within a few
steps of it).
Last line: one JSON object {env: {steps: median eval return}, ...} plus wall-clock."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHECKPOINTS = (5000, 10000, 20000)


def run_one(env_id: str, seed: int, out: Path, backend: str, actors: int, extra: list[str]) -> dict:
    run_dir = out / f"{env_id}-s{seed}"
    if backend == "ray":
        extra = ["--actors", str(actors), *extra]
    cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--backend", backend, "--env", env_id, "--seed", str(seed),
           "--steps", str(max(CHECKPOINTS)), "--run-dir", str(run_dir), "--no-progress", "run.eval_every=5000",
           "run.eval_episodes=10", *extra]
    summary = run_dir / "summary.json"
    done = summary.exists() and json.loads(summary.read_text())["env_steps"] >= max(CHECKPOINTS)
    if not done:  # a finished run in --out is reused, so an interrupted benchmark can be completed
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = json.loads(summary.read_text())["wall_seconds"]
    evals = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        if "eval_return_mean" in m:
            evals[m["env_steps"]] = (m["eval_return_mean"], m["wall_seconds"])
    at = {k: min((s for s in evals if s >= k), default=None) for k in CHECKPOINTS}  # first eval at/after k
    return {"env_id": env_id, "seed": seed, "wall_s": wall,
            "evals": {k: evals[s] for k, s in at.items() if s is not None}, "eval_at": at}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--envs", nargs="+", default=["Pendulum-v1", "CartPole-v1"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--backend", choices=["inline", "ray"], default="inline")
    p.add_argument("--actors", type=int, default=2, help="actors per run with --backend ray")
    p.add_argument("--out", default="runs/bench")
    p.add_argument("extra", nargs="*")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(e, s) for e in a.envs for s in a.seeds]
    with ThreadPoolExecutor(a.parallel) as ex:
        results = list(ex.map(lambda j: run_one(j[0], j[1], out, a.backend, a.actors, a.extra), jobs))
    summary: dict = {}
    for env_id in a.envs:
        rows = [r for r in results if r["env_id"] == env_id]
        print(f"\n{env_id}")
        print(f"{'seed':>5}" + "".join(f"{k // 1000:>8}k" for k in CHECKPOINTS) + f"{'wall s':>9}")
        for r in rows:
            cells = "".join(f"{r['evals'].get(k, (float('nan'),))[0]:>9.1f}" for k in CHECKPOINTS)
            print(f"{r['seed']:>5}{cells}{r['wall_s']:>9.0f}")
        med = {k: statistics.median(r["evals"][k][0] for r in rows) for k in CHECKPOINTS}
        wall = {k: statistics.median(r["evals"][k][1] for r in rows) for k in CHECKPOINTS}
        print(f"{'med':>5}" + "".join(f"{med[k]:>9.1f}" for k in CHECKPOINTS))
        summary[env_id] = {"median_eval_return": med, "median_wall_s_at": wall,
                           "eval_taken_at": {r["seed"]: r["eval_at"] for r in rows}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
