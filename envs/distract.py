"""Observations with distractors: entries of pure noise appended to a task's observation. Nothing in them can be
predicted, so a world model has to learn to leave them out of its state; features that do not learn (a random or
barely trained encoder) are dominated by them. What the passive-pretraining probe needs: on the bare task a random
encoder's features already linearise the next observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NoiseDistractors(gym.ObservationWrapper):
    """`k` standard-normal entries appended to a flat Box observation, drawn afresh every step (seeded by reset)."""

    def __init__(self, env: gym.Env, k: int):
        super().__init__(env)
        box = env.observation_space
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise ValueError("NoiseDistractors needs a flat Box observation space")
        self.observation_space = spaces.Box(np.r_[box.low, np.full(k, -np.inf)].astype(np.float32),
                                            np.r_[box.high, np.full(k, np.inf)].astype(np.float32))
        self.k = k
        self.noise = np.random.default_rng()

    def reset(self, *, seed=None, options=None):
        if seed is not None:  # its own stream: the task's draws stay what they are without distractors
            self.noise = np.random.default_rng([seed, 1])
        return super().reset(seed=seed, options=options)

    def observation(self, observation):
        return np.r_[np.asarray(observation, np.float32), self.noise.standard_normal(self.k, np.float32)]


def pendulum_distractors(k: int = 32, **kwargs) -> gym.Env:
    """Pendulum's (cos θ, sin θ, θ') followed by `k` noise entries."""
    from gymnasium.envs.classic_control.pendulum import PendulumEnv

    return NoiseDistractors(PendulumEnv(**kwargs), k)
