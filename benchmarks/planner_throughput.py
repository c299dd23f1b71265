"""Planner throughput: planned actions/s for a batch of envs at the default planner size, next to the time the
same matrix multiplications take as bare torch.mm calls (the ratio is how close planning runs to raw matmul).

    python benchmarks/planner_throughput.py [--device cpu|cuda] [--envs 1 16 64] [--threads 1]

Last line: one JSON object per device with the figures. Runs without Ray (usable on the GPU machine)."""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch

from ami.agent.agent import Agent
from ami.agent.configurator import configure
from ami.agent.fastmath import fast_fp32_matmul
from ami.agent.short_term import ShortTermMemory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def linear_shapes(agent: Agent, obs: np.ndarray) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every Linear call during one act()."""
    shapes: list[tuple[int, int, int]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: shapes.append(
        (inp[0].reshape(-1, mod.in_features).shape[0], mod.in_features, mod.out_features)))
        for m in agent.modules() if isinstance(m, torch.nn.Linear)]
    agent.act(obs, ShortTermMemory(len(obs)), explore=False)
    for h in hooks:
        h.remove()
    return shapes


def time_matmuls(shapes, device: torch.device, reps: int) -> float:
    mats = [(torch.randn(r, i, device=device), torch.randn(i, o, device=device)) for r, i, o in shapes]
    for a, b in mats:
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        for a, b in mats:
            a @ b
    _sync(device)
    return (time.perf_counter() - t) / reps


def bench(env_id: str, n_envs: int, device: torch.device, reps: int) -> dict:
    env = gym.make(env_id)
    agent = Agent(env.observation_space, env.action_space, configure(env.observation_space, env.action_space),
                  device=device)
    obs = np.stack([env.observation_space.sample() for _ in range(n_envs)])
    stm = ShortTermMemory(n_envs)
    for _ in range(3):
        agent.act(obs, stm, explore=False)
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        agent.act(obs, stm, explore=False)
    _sync(device)
    per_call = (time.perf_counter() - t) / reps
    shapes = linear_shapes(agent, obs)
    with fast_fp32_matmul(device, agent.planner.rows(n_envs)):  # the route the decision's products take
        mm = time_matmuls(shapes, device, reps)
    flops = sum(2 * r * i * o for r, i, o in shapes)
    return {"env_id": env_id, "envs": n_envs, "device": str(device), "planner": agent.cfg.planner.kind,
            "samples": agent.cfg.planner.samples, "iterations": agent.cfg.planner.iterations,
            "horizon": agent.cfg.planner.horizon, "actions_per_s": n_envs / per_call,
            "ms_per_call": per_call * 1e3, "matmul_ms": mm * 1e3, "matmul_fraction": mm / per_call,
            "gflops_effective": flops / per_call / 1e9}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--envs", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    rows = [bench(env_id, n, device, a.reps) for env_id in ("Pendulum-v1", "CartPole-v1") for n in a.envs]
    print(f"{'env':<13}{'envs':>5}{'planner':>9}{'actions/s':>11}{'ms/call':>9}{'mm ms':>8}{'mm/plan':>8}")
    for r in rows:
        print(f"{r['env_id']:<13}{r['envs']:>5}{r['planner']:>9}{r['actions_per_s']:>11.0f}{r['ms_per_call']:>9.2f}"
              f"{r['matmul_ms']:>8.2f}{r['matmul_fraction']:>8.2f}")
    print(json.dumps({"device": str(device), "threads": a.threads, "rows": rows}))


if __name__ == "__main__":
    main()
