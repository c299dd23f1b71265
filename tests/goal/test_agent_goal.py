"""The goal agent end to end on pixels (CNN, level 2 with z), and what stays unchanged for reward tasks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ami.agent.short_term import ShortTermMemory
from ami.agent.update import Updater
from tests.agent.helpers import tiny_agent
from tests.goal.helpers import goal_agent, sticky_replay


def test_pixel_goal_agent_acts_two_level_and_trains_both_levels() -> None:
    torch.set_num_threads(1)
    env_id = "ami/TwoRoomsPixels-v0"
    agent = goal_agent(env_id, plan_evals=512, episode_steps=100, k=2, z_dim=2)
    assert agent.goal_conditioned and agent.hierarchy is not None
    replay = sticky_replay(env_id, agent, 80, seed=0)
    b = replay.sample(4, 4)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    m, _ = Updater(agent).step({**b.data, "mask": b.mask, "weights": b.weights})
    for key in ("loss_prediction", "l2_loss_prediction", "l2_loss_variance", "l2_loss_z"):
        assert np.isfinite(m[key]), key
    assert m["l2_loss_z"] > 0  # level 2's z posterior is trained under its KL limit
    changed = {k.split(".")[0] for k, v in agent.state_dict().items() if not torch.equal(v, before[k])}
    assert {"world_model", "hierarchy"} <= changed
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    stm = ShortTermMemory(1)
    for _ in range(3):
        a = agent.act({k: v[None] for k, v in obs.items()}, stm, explore=True)
        assert env.action_space.contains(a[0])
        obs, *_ = env.step(a[0])
    assert stm.level2.subgoal.shape == (1, agent.cfg.hierarchy.latent_dim)
    assert agent.two_level.counter["level2"] > 0 and agent.two_level.counter["level1"] > 0


def test_reward_agents_have_no_level_2_and_keep_their_weights() -> None:
    agent = tiny_agent("Pendulum-v1")
    assert agent.hierarchy is None and not agent.goal_conditioned
    assert not any(k.startswith("hierarchy") for k in agent.state_dict())
