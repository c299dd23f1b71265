"""The GPU figures of issue "Fast", in one script of about five minutes (no Ray needed: PYTHONPATH=checkout).

    PYTHONPATH=. python benchmarks/gpu_speed.py [--device cuda] [--seconds 180] [--out DIR]

1. learner updates/s at batch 256: the configurator's model for this device and a ~5M-parameter one, each in
   float32, with bf16 autocast, and with torch.compile (CUDA graphs where the compiler takes them);
2. planning decisions/s at 1 and 64 envs (HalfCheetah-v5 spaces when MuJoCo is installed, else Pendulum-v1);
3. `ami train --backend inline --env HalfCheetah-v5 run.device=DEVICE` for `--seconds`, env steps/s over its
   logged span, extrapolated to a 100k-step run (labelled as such).
Prints a line per figure and, last, one JSON object with all of them (also written to DIR/gpu_speed.json).
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

import numpy as np
import torch
from profile_step import build, random_replay

from ami.agent.short_term import ShortTermMemory
from ami.agent.update import Updater
from ami.learner.learner import batch_to_dict

ROOT = Path(__file__).resolve().parents[1]
BIG = {"world_model": {"hidden": 700, "latent_dim": 256}, "encoder": {"hidden": 700}}  # ~5M parameters (HalfCheetah)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(fn, device: str, seconds: float = 8.0) -> float:
    """Calls per second of fn over about `seconds` (after a warm-up that also absorbs compilation)."""
    for _ in range(20):
        fn()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    _sync(device)
    return n / (time.perf_counter() - t0)


def updates(env_id: str, device: str) -> dict:
    out = {}
    for name, model in (("default", {}), ("5M", BIG)):
        for mode, extra in (("fp32", {}), ("bf16", {"optim": {"autocast": "bf16"}}), ("compile", {"compile": True})):
            agent, env, cfg = build(env_id, device, {**model, **extra})
            params = sum(p.numel() for p in agent.parameters())
            replay = random_replay(env, 8192)
            batches = [batch_to_dict(replay.sample(256, cfg.learner.window)) for _ in range(8)]
            it, updater = iter(range(10**9)), Updater(agent)
            rate = _rate(lambda u=updater, b=batches, i=it: u.step(b[next(i) % 8]), device)
            out[f"updates_per_s_{name}_{mode}"] = rate
            out[f"params_{name}"] = params
            print(f"update {name} ({params / 1e6:.2f} M params) {mode}: {rate:.0f} updates/s", flush=True)
    return out


def planning(env_id: str, device: str) -> dict:
    agent, env, _ = build(env_id, device)
    out = {}
    for n in (1, 64):
        obs = np.stack([env.observation_space.sample() for _ in range(n)])
        stm = ShortTermMemory(n)
        rate = _rate(lambda o=obs, m=stm: agent.act(o, m, explore=True), device, 5.0)
        out[f"plan_decisions_per_s_{n}env"] = rate
        print(f"plan {n} env(s): {rate:.0f} decisions/s ({rate * n:.0f} env actions/s)", flush=True)
    return out


def inline_run(env_id: str, device: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "ami.cluster.cli", "train", "--backend", "inline", "--env", env_id, "--steps",
               "100000", "--run-dir", f"{d}/run", "--no-progress", f"run.device={device}"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.terminate()  # SIGTERM: the run's lines so far are on disk
            proc.wait(timeout=60)
        lines = [json.loads(x) for x in Path(f"{d}/run/metrics.jsonl").read_text().splitlines()]
    logs = [(ln["env_steps"], ln["wall_seconds"]) for ln in lines if "eval_return_mean" not in ln]
    if len(logs) >= 3:
        logs = logs[1:]  # from the second line: warm-up (random play, compilation) excluded
    if len(logs) < 2:
        raise RuntimeError(f"the inline run logged {len(logs)} line(s) in {seconds:.0f} s: give it more --seconds")
    (s0, w0), (s1, w1) = logs[0], logs[-1]
    rate = (s1 - s0) / (w1 - w0)
    evals = [ln["eval_return_mean"] for ln in lines if "eval_return_mean" in ln]
    print(f"inline {env_id} on {device}: {rate:.1f} env steps/s over steps {s0}-{s1}; extrapolated: "
          f"{100_000 / rate / 60:.1f} min per 100k steps (not measured to 100k)", flush=True)
    return {"inline_env_steps_per_s": rate, "inline_span": [s0, s1],
            "inline_minutes_per_100k_extrapolated": 100_000 / rate / 60, "inline_evals": evals}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    a = p.parse_args()
    try:
        import mujoco  # noqa: F401

        env_id = "HalfCheetah-v5"
    except ImportError:
        env_id = "Pendulum-v1"
    out = {"device": a.device, "env_id": env_id, "torch": torch.__version__}
    if a.device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
    out.update(updates(env_id, a.device))
    out.update(planning(env_id, a.device))
    out.update(inline_run(env_id, a.device, a.seconds))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "gpu_speed.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
