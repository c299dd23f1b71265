"""Tiny goal agents and reward-free replay for the goal tests (small nets, fixed seeds: seconds on CPU)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import torch

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.agent.update import Updater
from ami.envs import register_envs
from ami.memory.local import LocalReplay

OPEN_ROOM = "ami/OpenRoom-v0"
"""A tiny open room (5 x 5 cells, one room: start and goal anywhere in it)."""


def goal_agent(env_id: str, plan_evals: int, episode_steps: int, seed: int = 0, **hier) -> Agent:
    """The configurator's goal agent, narrowed to 32-wide nets and a 16-d latent."""
    register_envs()
    torch.manual_seed(seed)
    env = gym.make(env_id)
    cfg = configure(env.observation_space, env.action_space, "goal",
                    ComputeBudget(plan_evals=plan_evals, episode_steps=episode_steps))
    cfg = dataclasses.replace(
        cfg, encoder=dataclasses.replace(cfg.encoder, hidden=32),
        world_model=dataclasses.replace(cfg.world_model, hidden=32, latent_dim=16),
        hierarchy=dataclasses.replace(cfg.hierarchy, hidden=32, **hier),
        optim=dataclasses.replace(cfg.optim, lr=1e-3))
    return Agent(env.observation_space, env.action_space, cfg)


def sticky_replay(env_id: str, agent: Agent, steps: int, seed: int, repeat: int = 4) -> LocalReplay:
    """Reward-free exploration: random actions held `repeat` steps."""
    replay = LocalReplay(steps + 500, seed=seed)
    runner = EpisodeRunner(env_id, agent, RunnerConfig(random_repeat=repeat), replay.add,
                           RunnerPlace(num_envs=4, seed=seed))
    runner.step(steps // 4, random=True)
    runner.flush_all()
    runner.close()
    return replay


BATCH = 64
"""Windows per update of the goal tests' small agents."""


def train(agent: Agent, replay: LocalReplay, updates: int, window: int) -> dict[str, float]:
    m: dict[str, float] = {}
    updater = Updater(agent)
    for _ in range(updates):
        b = replay.sample(BATCH, window)
        m, _ = updater.step({**b.data, "mask": b.mask, "weights": b.weights})
    return m
