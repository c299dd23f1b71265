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


class SpacesEnv(gym.Env):
    """A Tuple observation (a Box and a Discrete) and a MultiDiscrete or MultiBinary action; 9 steps. Each step
    checks that the action it gets belongs to its own space (an adapter that maps wrongly fails here)."""

    observation_space = gym.spaces.Tuple((gym.spaces.Box(-1.0, 1.0, (2,), np.float32), gym.spaces.Discrete(3)))

    def __init__(self, action: str = "multidiscrete"):
        self.action_space = (gym.spaces.MultiDiscrete([3, 2]) if action == "multidiscrete"
                             else gym.spaces.MultiBinary(3))
        self.t = 0

    def _obs(self):
        return np.array([self.t / 9, -self.t / 9], np.float32), self.t % 3

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, self.action_space.dtype)), action
        self.t += 1
        return self._obs(), float(np.sum(action)), False, self.t >= 9, {}


class TextEnv(gym.Env):
    """An observation space ami does not model."""

    observation_space = gym.spaces.Text(8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return "hello", {}

    def step(self, action):
        return "hello", 0.0, False, True, {}


for _id, _entry in (("test/Spaces-v0", SpacesEnv), ("test/Text-v0", TextEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=_entry)
