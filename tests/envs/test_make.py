"""Making a run's env: `module:Id` ids, DMC ids through shimmy, make() kwargs, action repeat, float32 spaces."""

from __future__ import annotations

import numpy as np
import pytest

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.agent.update import Updater
from ami.envs.make import EnvSpec, default_action_repeat, make_env, resolve_id
from ami.memory.local import LocalReplay

FLOAT64 = "tests.envs.registering:test/Float64-v0"


def test_module_prefix_imports_the_module_that_registers_the_id() -> None:
    assert resolve_id(FLOAT64) == "test/Float64-v0"
    with pytest.raises(ModuleNotFoundError):
        resolve_id("no_such_module_here:test/Float64-v0")


def test_float64_spaces_become_float32_and_kwargs_reach_the_constructor() -> None:
    env = make_env(EnvSpec(FLOAT64, {"scale": 2.0}))
    assert env.observation_space.dtype == np.float32 and env.action_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32 and obs.tolist() == [2.0, 2.0, 2.0]


def test_action_repeat_sums_rewards_and_stops_at_the_episode_end() -> None:
    env = make_env(EnvSpec(FLOAT64, action_repeat=3))
    env.reset(seed=0)
    steps = [env.step(np.zeros(2, np.float32)) for _ in range(3)]
    assert [s[1] for s in steps] == [3.0, 3.0, 1.0]  # 7 simulator steps: 3 + 3 + the last one alone
    assert [s[3] for s in steps] == [False, False, True] and steps[-1][0].tolist() == [7.0] * 3


def test_float64_env_segments_fit_the_replay_schema_and_train() -> None:
    """The replay's schema comes from the (float32) spaces; before, the stored action was <f4 against <f8."""
    env = make_env(FLOAT64)
    cfg = configure(env.observation_space, env.action_space, budget=ComputeBudget(plan_evals=32))
    agent = Agent(env.observation_space, env.action_space, cfg)
    replay = LocalReplay(1000, seed=0)
    runner = EpisodeRunner(FLOAT64, agent, RunnerConfig(segment_length=4), replay.add, RunnerPlace(num_envs=2))
    runner.step(10)
    batch = replay.sample(8, 3)
    assert batch.data["obs"].dtype == np.float32 and batch.data["action"].dtype == np.float32
    m, _ = Updater(agent).step({**batch.data, "mask": batch.mask, "weights": batch.weights})
    assert np.isfinite(m["loss_critic"])


def test_dmc_ids_play_at_action_repeat_2_and_truncate_at_500_decisions() -> None:
    pytest.importorskip("shimmy")
    env_id = "dm_control/cartpole-swingup-v0"
    assert default_action_repeat(env_id) == 2 and default_action_repeat("Pendulum-v1") == 1
    env = make_env(EnvSpec(env_id, action_repeat=2))
    assert all(s.dtype == np.float32 for s in env.observation_space.spaces.values())
    env.reset(seed=0)
    n, ended = 0, False
    while not ended:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        n, ended = n + 1, term or trunc
    assert n == 500 and trunc and not term  # a time limit, not a terminal state: the critic bootstraps there
