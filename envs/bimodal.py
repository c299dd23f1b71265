"""A stochastic toy with bimodal transitions: the next position jumps up or down by a fixed step with equal
probability. A deterministic predictor can only land between the two outcomes; a latent variable z can pick
one of them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class BimodalEnv(gym.Env):
    """x' = clip(x + 0.2 a + jump * (+1 or -1)); cost |x'|; 50 steps per episode."""

    metadata = {"render_modes": []}

    def __init__(self, jump: float = 1.0, limit: float = 4.0, max_steps: int = 50):
        self.jump, self.limit, self.max_steps = jump, limit, max_steps
        self.observation_space = spaces.Box(-limit, limit, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._x = 0.0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._x = float(self.np_random.uniform(-1.0, 1.0))
        self._t = 0
        return np.array([self._x], dtype=np.float32), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        sign = 1.0 if self.np_random.random() < 0.5 else -1.0
        self._x = float(np.clip(self._x + 0.2 * a + sign * self.jump, -self.limit, self.limit))
        self._t += 1
        obs = np.array([self._x], dtype=np.float32)
        return obs, -abs(self._x), False, self._t >= self.max_steps, {}
