"""A third-party module whose import registers an env (what gymnasium's `module:Id` form is for)."""

import gymnasium as gym
import numpy as np


class Float64Env(gym.Env):
    """A float64 Box observation and action (as DMC and some MuJoCo ids have); reward 1 per step, 7 steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)

    def __init__(self, scale: float = 1.0):
        self.scale, self.t = scale, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(3, self.scale * self.t, np.float64), {}

    def step(self, action):
        assert np.shape(action) == (2,)
        self.t += 1
        return np.full(3, self.scale * self.t, np.float64), 1.0, False, self.t >= 7, {}


if "test/Float64-v0" not in gym.registry:
    gym.register("test/Float64-v0", entry_point=Float64Env)
