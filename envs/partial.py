"""Partially observed versions of classic-control tasks: the velocities are dropped from the observation, so one
observation does not tell the state and an agent must infer it from the recent history (agent.belief)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

PARTIALLY_OBSERVED = "partially_observed"
"""Env metadata key: True when one observation does not determine the state (agent.belief=auto turns on)."""


class KeepIndices(gym.ObservationWrapper):
    """Only the observation entries at `keep` (a flat Box observation), and the env declared partially observed."""

    def __init__(self, env: gym.Env, keep: tuple[int, ...]):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise ValueError("KeepIndices needs a flat Box observation space")
        self.keep = np.asarray(keep, dtype=np.int64)
        self.observation_space = spaces.Box(box.low[self.keep], box.high[self.keep], dtype=box.dtype)
        self.metadata = {**env.metadata, PARTIALLY_OBSERVED: True}

    def observation(self, observation):
        return np.asarray(observation)[self.keep]


def pendulum_no_velocity(**kwargs) -> gym.Env:
    """Pendulum with (cos θ, sin θ) only: the angular velocity is hidden."""
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    return KeepIndices(PendulumEnv(**kwargs), (0, 1))


def cartpole_no_velocity(**kwargs) -> gym.Env:
    """CartPole with the cart position and pole angle only: both velocities are hidden."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    return KeepIndices(CartPoleEnv(**kwargs), (0, 2))


def is_partially_observed(env: gym.Env) -> bool:
    """What the env (or a wrapper of it) declares in its metadata."""
    return bool(env.metadata.get(PARTIALLY_OBSERVED, False))
