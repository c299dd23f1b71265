"""Learning by watching, measured: interaction steps to reach an eval return, from scratch vs after `ami pretrain` on
K observation-only episodes (benchmarks/passive_data.py's scripted policy). Not run in CI.

    python benchmarks/passive_pretrain.py --env Pendulum-v1 --episodes 50 --updates 2000 --steps 5000 \\
        --seeds 0,1,2 --target -200 [--out DIR] [key=value ...]
    python benchmarks/passive_pretrain.py --env ami/TwoRooms-v0 --metric success --target 0.9 ...

Per seed: the data (seed s), `ami pretrain` (seed s), then `ami train --backend inline` with and without
`--init-from` (same seed, same overrides), evaluated every --eval-every steps. Prints one JSON line per run and a
table: the first evaluation at or above --target, and the steps-to-target ratio scratch / pretrained.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def ami(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "ami.cluster.cli", *args], env=env, check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out.strip().splitlines()[-1])


def evals(run: Path, key: str) -> list[tuple[int, float]]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(x["env_steps"], x[key]) for x in lines if key in x]


def first_at(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((s for s, r in curve if r >= target), None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="Pendulum-v1")
    ap.add_argument("--episodes", type=int, default=50, help="observation-only episodes to pretrain on (K)")
    ap.add_argument("--policy", default="scripted", choices=("scripted", "random"))
    ap.add_argument("--updates", type=int, default=2000, help="pretraining updates")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--eval-episodes", type=int, default=5)
    ap.add_argument("--target", type=float, default=-200.0)
    ap.add_argument("--metric", choices=("return", "success"), default="return",
                    help="eval_return_mean, or eval_success_rate for goal tasks (e.g. --target 0.9)")
    ap.add_argument("--out", default="")
    ap.add_argument("overrides", nargs="*", metavar="key.path=value")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from passive_data import episodes

    out = Path(a.out or tempfile.mkdtemp(prefix="ami-passive-"))
    common = ["--backend", "inline", "--env", a.env, "--steps", str(a.steps), "--no-progress",
              f"run.eval_every={a.eval_every}", f"run.eval_episodes={a.eval_episodes}", *a.overrides]
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        data = out / f"data-s{seed}"
        data.mkdir(parents=True, exist_ok=True)
        for i, obs in enumerate(episodes(a.env, a.episodes, a.policy, seed)):
            np.savez(data / f"episode-{i:05d}.npz", observations=obs)
        pre = out / f"pretrain-s{seed}"
        p = ami("pretrain", "--data", str(data), "--env", a.env, "--updates", str(a.updates), "--run-dir", str(pre),
                "--seed", str(seed), "--no-progress", *a.overrides)
        row = {"seed": seed, "pretrain_s": round(p["wall_seconds"], 1)}
        for name, extra in (("scratch", []), ("pretrained", ["--init-from", str(pre)])):
            run = out / f"{name}-s{seed}"
            s = ami("train", *common, "--seed", str(seed), "--run-dir", str(run), *extra)
            curve = evals(run, "eval_success_rate" if a.metric == "success" else "eval_return_mean")
            row[name] = {"steps_to_target": first_at(curve, a.target), "curve": curve,
                         "wall_s": round(s["wall_seconds"], 1)}
            print(json.dumps({"seed": seed, "run": name, **row[name]}), flush=True)
        rows.append(row)
    (out / "passive.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{a.env}, K={a.episodes} {a.policy} episodes, {a.updates} pretraining updates, target {a.target}")
    print("| seed | scratch: steps to target | pretrained: steps to target | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for r in rows:
        s, p = r["scratch"]["steps_to_target"], r["pretrained"]["steps_to_target"]
        ratio = s / p if s and p else None
        ratios += [ratio] if ratio else []
        print(f"| {r['seed']} | {s or f'> {a.steps}'} | {p or f'> {a.steps}'} | {ratio and round(ratio, 2)} |")
    if ratios:
        print(f"median ratio {statistics.median(ratios):.2f} (goal >= 2)")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
