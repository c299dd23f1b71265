"""Small builders shared by the agent tests: tiny agents and replay filled with random play."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.envs import register_envs
from ami.memory.local import LocalReplay


def tiny_agent(env_id: str, seed: int = 0, cost: dict | None = None, optim: dict | None = None,
               **wm_overrides) -> Agent:
    """A narrow agent (fast on CPU) with the configurator's choices otherwise."""
    register_envs()
    torch.manual_seed(seed)
    env = gym.make(env_id)
    cfg = configure(env.observation_space, env.action_space, budget=ComputeBudget(plan_evals=256))
    wm = dataclasses.replace(cfg.world_model, hidden=64, latent_dim=16, **wm_overrides)
    cfg = dataclasses.replace(cfg, world_model=wm, encoder=dataclasses.replace(cfg.encoder, hidden=64),
                              cost=dataclasses.replace(cfg.cost, **(cost or {})),
                              optim=dataclasses.replace(cfg.optim, **(optim or {})))
    return Agent(env.observation_space, env.action_space, cfg)


def random_replay(env_id: str, agent: Agent, steps: int, seed: int = 0) -> LocalReplay:
    """A replay holding `steps` transitions of uniformly random play."""
    replay = LocalReplay(steps + 1000, seed=seed)
    runner = EpisodeRunner(env_id, agent, RunnerConfig(), replay.add, RunnerPlace(num_envs=4, seed=seed))
    runner.step(steps // 4, random=True)
    runner.flush_all()
    runner.close()
    return replay


def batch_dict(replay: LocalReplay, batch_size: int, window: int) -> dict:
    b = replay.sample(batch_size, window)
    return {**b.data, "mask": b.mask, "weights": b.weights}


def random_pendulum_play(episodes: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Uniform random torques: (observations [T+1, 3], actions in model units [T, 1]) per episode."""
    env, rng, out = gym.make("Pendulum-v1"), np.random.default_rng(seed), []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + e)
        seen, acts = [obs], []
        for _ in range(200):
            a = rng.uniform(-2, 2, 1).astype(np.float32)
            obs, *_ = env.step(a)
            seen.append(obs)
            acts.append(a / 2)
        out.append((np.asarray(seen, np.float32), np.asarray(acts)))
    return out
