"""How close acting and learning run to raw matmul: the time of one planning decision or one update next to the
time bare torch.mm takes for exactly the matrix products they make (shapes recorded while they run), in the same
process with the same matmul route. Used by benchmarks/speed.py (section c); runs without Ray."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from planner_throughput import linear_shapes, time_matmuls
from profile_step import build, random_replay
from torch.profiler import ProfilerActivity, profile

from ami.agent.fastmath import fast_fp32_matmul
from ami.agent.short_term import ShortTermMemory
from ami.agent.update import Updater
from ami.learner.learner import batch_to_dict


def _median_s(fn, reps: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plan_share(env_id: str, n_envs: int, reps: int = 30, compile: bool = False) -> dict:
    """`compile`: the agent.compile=true agent (its first decision, the compilation, is not timed)."""
    torch.set_num_threads(1)
    agent, env, _ = build(env_id, "cpu", {"compile": True} if compile else None)
    obs = np.stack([env.observation_space.sample() for _ in range(n_envs)])
    stm = ShortTermMemory(n_envs)
    per_call = _median_s(lambda: agent.act(obs, stm, explore=True), reps)
    # the products' shapes as the eager agent records them (a compiled graph hides its Linear calls)
    shapes = linear_shapes(build(env_id, "cpu")[0] if compile else agent, obs)
    with fast_fp32_matmul(agent.device, agent.planner.rows(n_envs)):  # the route the decision's products take
        mm = time_matmuls(shapes, agent.device, reps)
    return {"ms": per_call * 1e3, "matmul_ms": mm * 1e3, "fraction": mm / per_call}


def _product_shapes(fn) -> list[tuple[int, int, int, int]]:
    """(batch, rows, inner, cols) of every mm / addmm / bmm / baddbmm that fn runs (backward included)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    out = []
    for ev in prof.events():
        shapes = ev.input_shapes
        if ev.name in ("aten::mm", "aten::bmm"):
            a, b = shapes[0], shapes[1]
        elif ev.name in ("aten::addmm", "aten::baddbmm"):
            a, b = shapes[1], shapes[2]
        else:
            continue
        if len(a) == 3:
            out.append((a[0], a[1], a[2], b[2]))
        else:
            out.append((1, a[0], a[1], b[1]))
    return out


def update_share(env_id: str, reps: int = 30) -> dict:
    torch.set_num_threads(1)
    agent, env, cfg = build(env_id, "cpu")
    replay = random_replay(env, 4096)
    batch = batch_to_dict(replay.sample(cfg.learner.batch_size, cfg.learner.window))
    updater = Updater(agent)
    per_call = _median_s(lambda: updater.step(batch), reps)
    shapes = _product_shapes(lambda: updater.step(batch))
    mats = [(torch.randn(b, r, i), torch.randn(b, i, c)) for b, r, i, c in shapes]
    with fast_fp32_matmul(agent.device):  # the route the update's own products take
        mm = _median_s(lambda: [torch.bmm(x, y) if x.shape[0] > 1 else x[0] @ y[0] for x, y in mats], reps)
    return {"ms": per_call * 1e3, "matmul_ms": mm * 1e3, "fraction": mm / per_call, "products": len(shapes)}
