"""Reward-free goal reaching: a world model learned from random play alone, then planning toward the latent
of a goal observation, reaches goals in a tiny open room; the configurator's goal choices."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ami.actors.runner import evaluate
from ami.agent.configurator import ComputeBudget, configure
from ami.envs import register_envs
from tests.goal.helpers import OPEN_ROOM, goal_agent, sticky_replay, train


def test_goal_reaching_in_an_open_room_from_reward_free_play() -> None:
    torch.set_num_threads(1)
    agent = goal_agent(OPEN_ROOM, plan_evals=512, episode_steps=30)
    assert agent.goal_conditioned and agent.hierarchy is None
    replay = sticky_replay(OPEN_ROOM, agent, 3000, seed=0)
    m = train(agent, replay, 300, window=4)
    assert m["loss_cost"] >= 0 and "loss_policy" not in m  # nothing of the reward is learned or used
    out = evaluate(OPEN_ROOM, agent, episodes=20, seed=123)
    rand = random_success(20, seed=123)
    assert out["eval_success_rate"] >= 0.8 and out["eval_success_rate"] > rand + 0.4, (out, rand)


def random_success(episodes: int, seed: int) -> float:
    env = gym.make(OPEN_ROOM)
    env.action_space.seed(seed)
    wins = 0
    for i in range(episodes):
        env.reset(seed=seed + i)
        done, info = False, {}
        while not done:
            _, _, term, trunc, info = env.step(env.action_space.sample())
            done = term or trunc
        wins += bool(info["is_success"])
    return wins / episodes


def test_configurator_goal_tasks_are_reward_free_and_pick_flat_or_hierarchical() -> None:
    register_envs()
    env = gym.make("ami/FourRooms-v0")
    obs, act = env.observation_space, env.action_space
    short = configure(obs, act, "goal", ComputeBudget(plan_evals=2048, episode_steps=50))
    long = configure(obs, act, "goal", ComputeBudget(plan_evals=2048, episode_steps=300))
    poor = configure(obs, act, "goal", ComputeBudget(plan_evals=256, episode_steps=300))
    for cfg in (short, long, poor):
        assert cfg.cost.task_weight == 0 and cfg.cost.goal_weight > 0
        assert cfg.world_model.cost_weight == 0 and cfg.world_model.done_weight == 0 and cfg.cost.critic_weight == 0
    assert not short.hierarchy.enabled and not poor.hierarchy.enabled and long.hierarchy.enabled
    assert long.planner.horizon == long.hierarchy.k  # level 1 plans one abstract step toward the sub-goal
    # both levels' evaluations per decision fit the budget (before the level-2 proposals)
    per = [c.samples * c.iterations * c.horizon for c in (long.planner, long.hierarchy.planner)]
    assert sum(per) <= 2048 * 1.1, per
    reward = configure(gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32))
    assert not reward.hierarchy.enabled and reward.cost.task_weight == 1 and reward.world_model.cost_weight > 0
