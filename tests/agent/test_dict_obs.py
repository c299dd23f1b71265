"""Dict observations: vector keys in one encoder, images in their own; stored flat as 'obs.<key>' columns."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.agent.update import Updater
from ami.memory.local import LocalReplay


class DictPointEnv(gym.Env):
    """A point that moves toward a goal; observation {'pos', 'goal', 'view' (tiny uint8 image)}."""

    def __init__(self):
        self.observation_space = gym.spaces.Dict({
            "pos": gym.spaces.Box(-1, 1, (2,), np.float32), "goal": gym.spaces.Box(-1, 1, (2,), np.float32),
            "view": gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)})
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        return {"pos": self.pos.astype(np.float32), "goal": self.goal.astype(np.float32),
                "view": np.full((16, 16, 3), int(127 * (self.pos[0] + 1)), np.uint8)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal, self.t = np.zeros(2), self.np_random.uniform(-1, 1, 2), 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.asarray(action), -1, 1)
        self.t += 1
        return self._obs(), -float(np.linalg.norm(self.pos - self.goal)), False, self.t >= 10, {}


def test_dict_observations_act_store_and_update() -> None:
    gym.register("test/DictPoint-v0", entry_point=DictPointEnv) if "test/DictPoint-v0" not in gym.registry else None
    env = DictPointEnv()
    cfg = configure(env.observation_space, env.action_space, budget=ComputeBudget(plan_evals=64))
    agent = Agent(env.observation_space, env.action_space, cfg)
    replay = LocalReplay(1000, seed=0)
    runner = EpisodeRunner("test/DictPoint-v0", agent, RunnerConfig(), replay.add, RunnerPlace(num_envs=2))
    runner.step(12)
    runner.flush_all()
    batch = replay.sample(8, 3)
    assert {"obs.pos", "obs.goal", "obs.view", "next_obs.view"} <= set(batch.data)
    assert batch.data["obs.view"].dtype == np.uint8 and batch.data["obs.view"].shape == (8, 3, 16, 16, 3)
    m, _ = Updater(agent).step({**batch.data, "mask": batch.mask, "weights": batch.weights})
    assert np.isfinite(m["loss_prediction"]) and np.isfinite(m["loss_critic"])
