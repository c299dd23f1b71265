"""The goal-reaching envs: spaces, walls, success, registration, and the maze's length."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ami.envs import GOAL_ENV_IDS, register_envs
from ami.envs.rooms import geodesic_cells


@pytest.mark.parametrize("env_id", GOAL_ENV_IDS)
def test_goal_envs_are_registered_with_goal_observations(env_id: str) -> None:
    register_envs()
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"observation", "goal"} and env.observation_space.contains(obs)
    assert obs["observation"].shape == obs["goal"].shape
    if "Pixels" in env_id:
        assert obs["observation"].shape == (64, 64, 3) and obs["observation"].dtype == np.uint8
    assert info["is_success"] is False
    obs, _, term, trunc, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and "is_success" in info
    assert env.spec.max_episode_steps in (30, 100, 300)


def test_two_rooms_start_and_goal_in_different_rooms_and_the_wall_blocks() -> None:
    register_envs()
    env = gym.make("ami/TwoRooms-v0").unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        assert (env.pos[0] < 5) != (env.goal[0] < 5)  # the wall is column 5
    env.reset(seed=0)
    env.pos = np.array([4.5, 1.5])  # left room, above the door row: pushing right meets the wall
    for _ in range(5):
        env.step(np.array([1.0, 0.0]))
    assert env.pos[0] < 5.0
    env.pos = np.array([4.5, 3.5])  # the door row: the point passes
    for _ in range(3):
        env.step(np.array([1.0, 0.0]))
    assert env.pos[0] > 5.5


def test_success_ends_the_episode() -> None:
    register_envs()
    env = gym.make("ami/TwoRooms-v0")
    env.reset(seed=1)
    u = env.unwrapped
    u.pos = u.goal + np.array([0.6, 0.0])
    _, reward, term, _, info = env.step(np.array([-1.0, 0.0]))
    assert term and info["is_success"] and reward == 0.0


def test_four_rooms_needs_at_least_100_steps() -> None:
    register_envs()
    env = gym.make("ami/FourRooms-v0").unwrapped
    steps = []
    for seed in range(40):
        env.reset(seed=seed)
        steps.append(geodesic_cells(env, env.pos, env.goal) / env.speed)
    assert min(steps) >= 100, min(steps)
    assert max(steps) < env.max_steps  # yet every episode is solvable in time


def test_pixels_show_the_point_where_it_is() -> None:
    register_envs()
    env = gym.make("ami/TwoRoomsPixels-v0").unwrapped
    obs, _ = env.reset(seed=0)
    red = np.argwhere(obs["observation"][..., 0] == 220)
    centre = red.mean(0)[::-1] * np.array([env.cols, env.rows]) / 64  # (x, y) in cells
    assert np.linalg.norm(centre - env.pos) < 0.3
    assert not np.array_equal(obs["observation"], obs["goal"])
