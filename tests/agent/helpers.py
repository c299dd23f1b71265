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


def random_pendulum_play(episodes: int, seed: int, env_id: str = "Pendulum-v1") -> list[tuple[np.ndarray, np.ndarray]]:
    """Uniform random torques: (observations [T+1, ...], actions in model units [T, 1]) per episode; `env_id`: a
    Pendulum variant (ami/PendulumDistractors-v0)."""
    register_envs()
    env, rng, out = gym.make(env_id), np.random.default_rng(seed), []
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


RIDGE = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""Ridge strengths tried per probe (times the number of fitting rows, on standardised features)."""


def _ridge_fit(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + lam * len(x) * np.eye(x.shape[1]), x.T @ y)


def _score(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float((((x @ w - y) ** 2).mean(0) / y.var(0)).mean())


def probe_error(x: np.ndarray, y: np.ndarray) -> float:
    """Normalised held-out error of a linear probe x -> y: ridge on standardised features, its strength picked on
    the last third of the first half, refitted on the whole first half and scored on the second half (the error per
    output dimension over its variance, averaged). Plain least squares on ~64 features from a few hundred rows fits
    noise along directions of tiny variance and scores erratically on held-out rows; the ridge does not."""
    n = len(y) // 2
    x = (x - x[:n].mean(0)) / (x[:n].std(0) + 1e-8)
    x = np.c_[x, np.ones(len(x))]
    m = 2 * n // 3
    lam = min(RIDGE, key=lambda lam: _score(x[m:n], y[m:n], _ridge_fit(x[:m], y[:m], lam)))
    return _score(x[n:], y[n:], _ridge_fit(x[:n], y[:n], lam))


def next_obs_probe_error(agent: Agent, episodes: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """`probe_error` of [s_t, a_t] -> Pendulum's part of o_t+1 (its first 3 entries: distractors after them are
    noise nobody can predict), s_t from the agent's frozen encoder."""
    with torch.no_grad():
        x = np.concatenate([np.c_[agent.world_model.encode(torch.as_tensor(o[:-1])).numpy(), a] for o, a in episodes])
    return probe_error(x, np.concatenate([o[1:, :3] for o, _ in episodes]))
