"""The planner's terminal value with pessimism over the critic's members (`agent.planner.value_pessimism`)."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ami.agent.actions import ActionSpec
from ami.agent.config import CostConfig, PlannerConfig
from ami.agent.cost import Critic
from ami.agent.nets import symlog
from ami.agent.planner import Planner
from tests.agent.helpers import tiny_agent


class Member(nn.Module):
    """A fixed critic member over 1-D states: cost 1 + (s + 0.5)^2 left of 0, where every member agrees, and
    0.5 + (s - 0.5)^2 + `offset` right of it, where members disagree by their offsets (symlog space out)."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x[..., :1]
        return symlog(torch.where(s < 0, 1 + (s + 0.5) ** 2, 0.5 + (s - 0.5) ** 2 + self.offset))


class Shift:
    """PlanModel: s' = s + a, no step cost, the terminal cost read from a two-member critic."""

    action = ActionSpec(False, 1, (-1.0,), (1.0,))
    z_dim = 0
    gamma = 1.0

    def __init__(self, pessimism: float):
        self.critic = Critic(1, 1, 8, CostConfig())
        self.critic.members = nn.ModuleList([Member(2.0), Member(-2.0)])
        self.pessimism = pessimism

    def step(self, s, a, z):
        return s + a, torch.zeros(s.shape[0]), torch.ones(s.shape[0])

    def terminal(self, s):
        return self.critic(s, torch.zeros_like(s), self.pessimism)

    def propose(self, s):
        return None


def test_pessimism_steers_the_search_away_from_where_members_disagree() -> None:
    cfg = PlannerConfig(horizon=1, samples=256, elites=32, iterations=6, policy_samples=0, max_std=1.0)
    s0 = torch.zeros(1, 1)
    torch.manual_seed(0)
    a_mean, _, _ = Planner(cfg, Shift.action).plan(Shift(0.0), s0)
    torch.manual_seed(0)
    a_pess, _, _ = Planner(cfg, Shift.action).plan(Shift(1.0), s0)
    # the members' mean is lowest right of 0 (0.5 vs 1.0); their disagreement there (std 2) outweighs it
    assert abs(float(a_mean) - 0.5) < 0.1
    assert abs(float(a_pess) + 0.5) < 0.1


def test_the_agents_terminal_value_adds_the_members_std_times_the_setting() -> None:
    agent = tiny_agent("Pendulum-v1")
    torch.manual_seed(1)
    s = torch.randn(32, agent.cfg.world_model.latent_dim)
    a = agent.policy.sample(s, greedy=True)[0]
    q = agent.critic.decode_value(agent.critic.raw_q(s, a)).detach()
    mean, std = q.mean(0), q.std(0, unbiased=False)
    assert float(std.min()) > 0  # freshly built members differ: the check below can tell the terms apart
    cfg = agent.cfg
    for k in (0.0, 1.5):
        parts = dataclasses.replace(agent.parts, cfg=dataclasses.replace(
            cfg, planner=dataclasses.replace(cfg.planner, value_pessimism=k)))
        with torch.no_grad():
            torch.testing.assert_close(parts.value(s), mean + k * std)
