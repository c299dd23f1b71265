"""Continuous and discrete action spaces both go through act() and the update step; the configurator's choices."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from ami.agent import planner as planner_module
from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, Configurator, configure, plan_config
from ami.agent.short_term import ShortTermMemory
from ami.agent.update import Updater
from tests.agent.helpers import batch_dict, random_replay, tiny_agent


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
@pytest.mark.parametrize("kind", ["mppi", "grad", "policy"])
def test_act_and_update(env_id: str, kind: str) -> None:
    agent = tiny_agent(env_id)
    agent.set_planner(plan_config(gym.make(env_id).action_space, 256) if kind == "mppi" else
                      type(agent.cfg.planner)(kind=kind, horizon=3, samples=16, grad_steps=3))
    replay = random_replay(env_id, agent, 400)
    space = gym.make(env_id).action_space
    stm = ShortTermMemory(3)
    obs = np.stack([gym.make(env_id).observation_space.sample() for _ in range(3)])
    for _ in range(2):
        actions = agent.act(obs, stm, explore=True)
        assert len(actions) == 3 and all(space.contains(a) for a in actions)
    assert stm.plan is not None and stm.plan.shape[:2] == (3, 3)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    m, _ = Updater(agent).step(batch_dict(replay, 32, 3))
    for key in ("loss_prediction", "loss_variance", "loss_covariance", "loss_cost", "loss_critic", "loss_policy",
                "embed_std_min", "effective_rank"):
        assert np.isfinite(m[key]), key
    changed = [k for k, v in agent.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("world_model.predictor") for k in changed)
    assert any(k.startswith("policy") for k in changed)
    assert any(k.startswith("critic.targets") for k in changed)  # EMA targets moved


def test_short_term_memory_resets_plans_of_finished_envs() -> None:
    agent = tiny_agent("Pendulum-v1")
    stm = ShortTermMemory(2)
    obs = np.zeros((2, 3), dtype=np.float32)
    agent.act(obs, stm)
    stm.plan = torch.ones_like(stm.plan)
    stm.reset(np.array([True, False]))
    warm = stm.warm_start(agent.planner)
    assert torch.all(warm[0] == 0) and torch.all(warm[1, :-1] == 1)


def test_configurator_picks_from_spaces_and_budget() -> None:
    img = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    vec = gym.spaces.Box(-1, 1, (5,), np.float32)
    box = gym.spaces.Box(-1, 1, (2,), np.float32)
    assert configure(img, box).encoder.kind == "cnn"
    assert configure(vec, box).encoder.kind == "auto"
    assert configure(vec, box, "goal").cost.goal_weight > 0 and configure(vec, box, "goal").cost.task_weight == 0
    assert configure(vec, box, budget=ComputeBudget(plan_evals=0)).planner.kind == "policy"
    exhaustive = plan_config(gym.spaces.Discrete(2), 1152)
    assert exhaustive.samples == 2 ** exhaustive.horizon and exhaustive.iterations == 1
    long = configure(vec, box, budget=ComputeBudget(episode_steps=1000)).cost.gamma
    short = configure(vec, box, budget=ComputeBudget(episode_steps=100)).cost.gamma
    assert short < long


def test_configurator_modulates_under_time_pressure() -> None:
    base = plan_config(gym.spaces.Box(-1, 1, (1,)), 1152)
    conf = Configurator(base, gym.spaces.Box(-1, 1, (1,)), deadline_s=0.01)
    smaller = conf.modulate(0.05)
    assert smaller.samples == base.samples // 2
    for _ in range(10):
        last = conf.modulate(0.05)
    assert last.kind == "policy"  # no time to plan at all: mode-1
    for _ in range(10):
        back = conf.modulate(0.001)
    assert back == base


def test_compile_is_optional_and_keeps_weight_names() -> None:
    env = gym.make("Pendulum-v1")
    cfg = configure(env.observation_space, env.action_space)
    plain = Agent(env.observation_space, env.action_space, cfg)
    compiled = Agent(env.observation_space, env.action_space, dataclasses.replace(cfg, compile=True))
    assert plain.planner._search == plain.planner._mppi
    assert compiled.planner._search != compiled.planner._mppi  # the search is compiled ...
    assert compiled.world_model.predictor._compiled_call_impl is None  # ... and, on a CPU, the networks are not
    assert compiled.state_dict().keys() == plain.state_dict().keys()  # snapshots interchange


def test_the_compiled_search_of_an_agent_compiles_once(monkeypatch) -> None:
    # one graph for every decision of one env count: nothing in the search (e.g. the eval counter) may make dynamo
    # recompile or split it (captured on aot_eager: inductor's C++ compilation is not what is checked here)
    monkeypatch.setattr(planner_module, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    agent = tiny_agent("Pendulum-v1")
    agent.cfg = dataclasses.replace(agent.cfg, compile=True)
    agent.set_planner(agent.cfg.planner)
    obs = np.stack([gym.make("Pendulum-v1").reset(seed=i)[0] for i in range(2)]).astype(np.float32)
    stm = ShortTermMemory(2)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    actions = [agent.act(obs, stm, explore=True) for _ in range(4)]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs + 1
    assert all(a.shape == (2, 1) and np.all(np.abs(a) <= 2.0) for a in actions)


def test_bf16_autocast_update_trains_in_float32_masters() -> None:
    # the GPU learner's mixed-precision option, exercised on CPU (where autocast also runs): every loss is finite,
    # the weights move, and the master weights and optimiser state stay float32
    agent = tiny_agent("Pendulum-v1", optim=dict(autocast="bf16"))
    replay = random_replay("Pendulum-v1", agent, 400)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    updater = Updater(agent)
    for _ in range(2):
        m, _ = updater.step(batch_dict(replay, 32, 3))
    assert all(np.isfinite(v) for v in m.values()), m
    assert all(p.dtype == torch.float32 for p in agent.parameters())
    changed = [k for k, v in agent.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("critic.members") for k in changed) and any(k.startswith("policy") for k in changed)
