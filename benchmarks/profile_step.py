"""Where the time of one acting decision and one update goes: torch.profiler tables on one CPU thread.

    python benchmarks/profile_step.py [--env Pendulum-v1] [--envs 1 16] [--reps 50] [--rows 12]

Builds the agent exactly as `ami train` does (configurator + the default TrainConfig), fills a LocalReplay with
random segments and profiles `Agent.act` at each env count and `Agent.update` at the default batch and window.
Prints ms per call and the top operators by self CPU time. Runs without Ray (usable on the GPU machine).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from ami.agent.agent import Agent
from ami.agent.short_term import ShortTermMemory
from ami.agent.update import Updater
from ami.cluster.config import TrainConfig, apply
from ami.cluster.envinfo import inspect_env
from ami.cluster.resolve import resolve_agent
from ami.envs import register_envs
from ami.learner.learner import batch_to_dict
from ami.memory.core import Segment, SegmentMeta
from ami.memory.local import LocalReplay


def build(env_id: str, device: str, overrides: dict | None = None) -> tuple[Agent, gym.Env, TrainConfig]:
    """The agent `ami train --env env_id run.device=device` builds (`overrides`: agent.* keys, nested)."""
    register_envs()
    env = gym.make(env_id)
    cfg = apply(TrainConfig(), {"run": {"device": device}, "agent": overrides or {}})
    agent_cfg = resolve_agent(cfg, inspect_env(env_id))
    return Agent(env.observation_space, env.action_space, agent_cfg, device=device), env, cfg


def random_replay(env: gym.Env, steps: int, seed: int = 0) -> LocalReplay:
    """A replay of `steps` random transitions of env, in 64-step segments."""
    replay = LocalReplay(steps, seed=seed)
    obs, _ = env.reset(seed=seed)
    rows: list[dict] = []
    for t in range(steps):
        a = env.action_space.sample()
        nxt, r, term, trunc, _ = env.step(a)
        rows.append({"obs": np.asarray(obs, np.float32), "action": np.asarray(a), "reward": np.float32(r),
                     "terminated": bool(term), "truncated": bool(trunc), "next_obs": np.asarray(nxt, np.float32)})
        obs = nxt
        if term or trunc:
            obs, _ = env.reset()
        if len(rows) == 64 or term or trunc or t == steps - 1:
            data = {k: np.stack([row[k] for row in rows]) for k in rows[0]}
            replay.add(Segment(data, SegmentMeta(0, "bench", t, 0, 0)))
            rows = []
    return replay


def timed(fn, reps: int) -> float:
    for _ in range(5):
        fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def show(name: str, fn, reps: int, rows: int) -> float:
    ms = timed(fn, reps) * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn()
    print(f"\n== {name}: {ms:.2f} ms per call")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))
    return ms


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--rows", type=int, default=12)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    agent, env, cfg = build(a.env, a.device)
    for n in a.envs:
        obs = np.stack([env.observation_space.sample() for _ in range(n)])
        stm = ShortTermMemory(n)
        show(f"act, {n} env(s)", lambda obs=obs, stm=stm: agent.act(obs, stm, explore=True), a.reps, a.rows)
    replay = random_replay(env, 4096)
    lc, updater = cfg.learner, Updater(agent)
    show(f"update, batch {lc.batch_size} window {lc.window}",
         lambda: updater.step(batch_to_dict(replay.sample(lc.batch_size, lc.window))), a.reps, a.rows)


if __name__ == "__main__":
    main()
