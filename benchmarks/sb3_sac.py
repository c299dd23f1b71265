"""The SAC row measured here: Stable-Baselines3 SAC with its defaults on a gymnasium id, evaluated like ami's
runs (mean return of 10 deterministic episodes every 5000 env steps), for the MuJoCo rows of the control-suite
table (benchmarks/control_suite.py reads these CSVs).

    python benchmarks/sb3_sac.py --tasks HalfCheetah-v5,Hopper-v5 [--steps 100000] [--seeds 0] [--threads 1]

Writes benchmarks/results/control_suite/sb3-sac/<task>-s<seed>.csv (same columns as ami's, `commit` holds the
SB3 version); skips a (task, seed) whose CSV exists.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "control_suite" / "sb3-sac"


def run_one(task: str, seed: int, steps: int, every: int) -> Path:
    import gymnasium as gym
    import numpy as np
    import stable_baselines3
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor

    out = OUT / f"{task}-s{seed}.csv"
    if out.exists():
        return out
    t0 = time.perf_counter()
    walls: list[float] = []

    class Clocked(EvalCallback):  # EvalCallback with the wall clock of each evaluation
        def _on_step(self) -> bool:
            ok = super()._on_step()
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                walls.append(time.perf_counter() - t0)
            return ok

    model = SAC("MlpPolicy", gym.make(task), seed=seed, verbose=0)
    log = Path(__file__).parents[1] / "runs" / "sb3-sac" / f"{task}-s{seed}"  # (EvalCallback keeps results only
    evals = Clocked(Monitor(gym.make(task)), n_eval_episodes=10, eval_freq=every, deterministic=True, verbose=0,
                    log_path=str(log))  # when it also writes them there)
    model.learn(total_timesteps=steps, callback=evals)
    OUT.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("env_steps", "sim_steps", "eval_return_mean", "eval_return_std", "wall_seconds", "commit"))
        for n, res, wall in zip(evals.evaluations_timesteps, evals.evaluations_results, walls, strict=True):
            w.writerow([n, n, float(np.mean(res)), float(np.std(res)), round(wall, 1),
                        f"sb3-{stable_baselines3.__version__}"])
    print(f"{task} seed {seed}: final {evals.last_mean_reward:.1f} in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="HalfCheetah-v5,Hopper-v5")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", default="0")
    p.add_argument("--every", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    for s in map(int, a.seeds.split(",")):
        for t in a.tasks.split(","):
            run_one(t, s, a.steps, a.every)


if __name__ == "__main__":
    main()
