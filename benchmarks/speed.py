"""Speed next to SAC, in one run on one box (issue "Fast"): the figures of benchmarks/RESULTS.md "## Speed".

    python benchmarks/speed.py [--envs Pendulum-v1 HalfCheetah-v5] [--sections a b c] [--ami-root DIR]

(a) env steps/s of `ami train` (default backend, and inline) at its defaults, and of Stable-Baselines3 SAC with
    its default hyper-parameters (1 gradient step per env step, its better of 1 or 2 torch threads), run one after
    the other, each alone on the box; the ratio ours / SAC.
(b) the Ray path while training: env steps/s with 1 and 2 actors, and the learner's updates/s.
(c) in this process: an update step and a 1- and 16-env planning decision, as a fraction of the time bare
    torch.mm takes for the same matrix shapes; the Pendulum decisions also with agent.compile=true.

Protocol of every steps/s figure: env steps 2k-7k of a run, evaluation excluded: steps/s = 4000 steps over the
wall time of 2k->4k plus 5k->7k (the default evaluation runs at 5k, between those two spans). `--ami-root` runs
the `ami` of another checkout (e.g. a worktree of the commit a change started from) against the same SAC runs.
The last line is one JSON object (ratio_vs_sac_<env>, plan_ms_1env, plan_matmul_fraction_16env,
ray_learner_updates_per_s, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPANS = ((2000, 4000), (5000, 7000))  # env steps; the default eval at 5000 falls between them
STEPS = 7000

SAC_SCRIPT = """
import json, sys, time
import gymnasium as gym, torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
torch.set_num_threads(int(sys.argv[2]))
marks = {m: None for m in (2000, 4000, 5000, 7000)}
class Clock(BaseCallback):
    def _on_step(self):
        if self.num_timesteps in marks:
            marks[self.num_timesteps] = time.perf_counter()
        return True
model = SAC("MlpPolicy", gym.make(sys.argv[1]), seed=0, verbose=0)
model.learn(total_timesteps=7000, callback=Clock())
print(json.dumps({"marks": {str(k): v for k, v in marks.items()}, "updates": int(model._n_updates)}))
"""


def wall_at_marks(points: list[tuple[int, float]]) -> dict[int, float]:
    """Wall seconds at each span mark from (env_steps, wall_seconds) log points: the exact point when one was
    logged at the mark (the inline backend logs right after its evaluation), else linear interpolation (the
    Ray driver logs when its counter passes a multiple of log_every)."""
    points = sorted(points)
    out = {}
    for mark in {m for span in SPANS for m in span}:
        exact = [w for s, w in points if s == mark]
        if exact:
            out[mark] = exact[-1]
            continue
        (s0, w0), (s1, w1) = max(p for p in points if p[0] < mark), min(p for p in points if p[0] > mark)
        out[mark] = w0 + (w1 - w0) * (mark - s0) / (s1 - s0)
    return out


def span_rate(wall_at: dict[int, float]) -> float:
    """Env steps/s over SPANS from the wall clock at each mark."""
    seconds = sum(wall_at[b] - wall_at[a] for a, b in SPANS)
    return sum(b - a for a, b in SPANS) / seconds


def ami_run(env: str, backend: str | None, ami_root: Path, extra: list[str] | None = None) -> dict:
    """One `ami train` of STEPS steps at the defaults; steps/s over SPANS from metrics.jsonl."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--env", env, "--steps", str(STEPS), "--seed", "0",
               "--run-dir", f"{d}/run", "--no-progress", *(["--backend", backend] if backend else []), *(extra or [])]
        env_vars = {**os.environ, "PYTHONPATH": str(ami_root)}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ami_root, env=env_vars, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ami train failed: {proc.stderr[-2000:]}")
        lines = [json.loads(x) for x in Path(f"{d}/run/metrics.jsonl").read_text().splitlines()]
        summary = json.loads(Path(f"{d}/run/summary.json").read_text())
    wall_at = wall_at_marks([(ln["env_steps"], ln["wall_seconds"]) for ln in lines if "eval_return_mean" not in ln])
    warmup = 1000
    return {"steps_per_s": span_rate(wall_at), "updates": summary["updates"],
            "updates_ok": summary["updates"] >= 0.99 * (STEPS - warmup), "wall_s": time.perf_counter() - t0,
            "summary": summary}


def sac_run(env: str, threads: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", SAC_SCRIPT, env, str(threads)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"SAC failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"steps_per_s": span_rate({int(k): v for k, v in out["marks"].items()}), "updates": out["updates"],
            "threads": threads}


def section_a(envs: list[str], ami_root: Path) -> dict:
    out = {}
    for env in envs:
        # alternate ours and SAC, each alone on the box
        sac = []
        ray_run = ami_run(env, None, ami_root)
        sac.append(sac_run(env, 1))
        inline = ami_run(env, "inline", ami_root)
        sac.append(sac_run(env, 2))
        best = max(sac, key=lambda r: r["steps_per_s"])
        key = env.split("-")[0].lower()
        out[env] = {"ami_default": ray_run["steps_per_s"], "ami_inline": inline["steps_per_s"],
                    "sac": best["steps_per_s"], "sac_threads": best["threads"],
                    "sac_1thread": sac[0]["steps_per_s"], "sac_2threads": sac[1]["steps_per_s"],
                    "updates_default": ray_run["updates"], "updates_inline": inline["updates"],
                    "updates_ok": ray_run["updates_ok"] and inline["updates_ok"],
                    "eval_default": ray_run["summary"]["eval_return_mean"],
                    "eval_inline": inline["summary"]["eval_return_mean"]}
        out[f"ratio_vs_sac_{key}"] = ray_run["steps_per_s"] / best["steps_per_s"]
        out[f"ratio_vs_sac_{key}_inline"] = inline["steps_per_s"] / best["steps_per_s"]
        print(f"{env}: ami default {ray_run['steps_per_s']:.1f}, inline {inline['steps_per_s']:.1f}, SAC "
              f"{sac[0]['steps_per_s']:.1f} (1 thread) / {sac[1]['steps_per_s']:.1f} (2 threads) env steps/s; "
              f"ratio {out[f'ratio_vs_sac_{key}']:.2f}; updates {ray_run['updates']} / {inline['updates']}",
              flush=True)
    return out


def section_b(ami_root: Path) -> dict:
    out = {}
    for k in (1, 2):
        r = ami_run("Pendulum-v1", "ray", ami_root, ["--actors", str(k)])
        s = r["summary"]
        out[f"ray_{k}actor_steps_per_s"] = r["steps_per_s"]
        out[f"ray_{k}actor_updates_per_s"] = s.get("updates_per_s")
        print(f"ray, {k} actor(s): {r['steps_per_s']:.1f} env steps/s (2k-7k), learner {s.get('updates_per_s'):.1f} "
              f"updates/s over the run, busy {s.get('learner_busy_fraction', float('nan')):.2f}", flush=True)
    out["ray_learner_updates_per_s"] = out["ray_2actor_updates_per_s"]
    return out


def section_c() -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from matmul_share import plan_share, update_share

    out = {}
    cases = (("Pendulum-v1", 1, False), ("Pendulum-v1", 16, False), ("CartPole-v1", 16, False),
             ("Pendulum-v1", 1, True), ("Pendulum-v1", 16, True))  # True: agent.compile=true
    for env, n, compiled in cases:
        r = plan_share(env, n, compile=compiled)
        tag = f"{'' if env.startswith('Pendulum') else 'cartpole_'}{n}env{'_compiled' if compiled else ''}"
        out[f"plan_ms_{tag}"] = r["ms"]
        out[f"plan_matmul_fraction_{tag}"] = r["fraction"]
        label = f"{env} {n} env(s){' compiled' if compiled else ''}"
        print(f"plan {label}: {r['ms']:.2f} ms, matmul {r['matmul_ms']:.2f} ms = {r['fraction']:.2f}",
              flush=True)
    r = update_share("Pendulum-v1")
    out["update_ms"], out["update_matmul_fraction"] = r["ms"], r["fraction"]
    print(f"update Pendulum-v1: {r['ms']:.2f} ms, matmul {r['matmul_ms']:.2f} ms = {r['fraction']:.2f}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    p.add_argument("--sections", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    p.add_argument("--ami-root", type=Path, default=ROOT, help="checkout whose ami is measured (a, b)")
    a = p.parse_args()
    out: dict = {"ami_root": str(a.ami_root)}
    if "a" in a.sections:
        out.update(section_a(a.envs, a.ami_root))
    if "b" in a.sections:
        out.update(section_b(a.ami_root))
    if "c" in a.sections:
        out.update(section_c())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
