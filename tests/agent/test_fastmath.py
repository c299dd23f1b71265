"""The oneDNN matmul route: taken around planning steps of many rows only, restored after, and it changes no
plan beyond float32 rounding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import ami.agent.fastmath as fastmath
from ami.agent.short_term import ShortTermMemory
from tests.agent.helpers import tiny_agent


def _precision() -> str | None:
    flag = fastmath._flag()
    return None if flag is None else flag.fp32_precision


def _route_seen(agent, obs) -> set:
    """The matmul precision setting each Linear of one act() ran under."""
    seen: set = set()
    hooks = [m.register_forward_hook(lambda *_: seen.add(_precision()))
             for m in agent.modules() if isinstance(m, torch.nn.Linear)]
    agent.act(obs, ShortTermMemory(len(obs)), explore=False)
    for h in hooks:
        h.remove()
    return seen


def test_planning_takes_the_route_only_for_many_rows_and_restores_it() -> None:
    if fastmath._flag() is None or not fastmath.onednn_fp32_exact():
        pytest.skip("no exact oneDNN float32 route on this CPU")
    agent = tiny_agent("Pendulum-v1")
    space = gym.make("Pendulum-v1").observation_space
    one = agent.planner.rows(1)
    assert one < fastmath.ONEDNN_MIN_ROWS  # the default budget's single env stays on MKL
    many = -(-fastmath.ONEDNN_MIN_ROWS // one)  # envs enough to reach the threshold
    before = _precision()
    assert _route_seen(agent, np.stack([space.sample()])) == {before}
    assert _route_seen(agent, np.stack([space.sample() for _ in range(many)])) == {"bf16"}
    assert _precision() == before


def test_the_route_changes_plans_by_rounding_only(monkeypatch) -> None:
    agent = tiny_agent("Pendulum-v1")
    space = gym.make("Pendulum-v1").observation_space
    space.seed(0)
    obs = np.stack([space.sample() for _ in range(16)])
    acts = []
    for threshold in (10**9, 0):  # never routed, then always
        monkeypatch.setattr(fastmath, "ONEDNN_MIN_ROWS", threshold)
        torch.manual_seed(1)
        stm = ShortTermMemory(len(obs))
        acts.append(np.stack([agent.act(obs, stm, explore=False) for _ in range(4)]))
    np.testing.assert_allclose(acts[0], acts[1], atol=1e-3)
