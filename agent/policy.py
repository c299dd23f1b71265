"""Mode-1: a reactive policy trained to amortise the planner (minimise the critic, plus optional cloning
of the planner's actions). It proposes trajectories to the planner and acts alone when the budget is zero."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ami.agent.actions import ActionSpec
from ami.agent.nets import mlp


class Policy(nn.Module):
    """Tanh-Gaussian for Box actions, categorical for Discrete (outputs one-hot samples)."""

    def __init__(self, latent_dim: int, action: ActionSpec, hidden: int):
        super().__init__()
        self.action = action
        out = action.dim if action.discrete else 2 * action.dim
        self.net = mlp(latent_dim, hidden, out)

    def dist(self, s: torch.Tensor):
        out = self.net(s)
        if self.action.discrete:
            return out, None
        mu, log_std = out.chunk(2, -1)
        return mu, log_std.clamp(-5, 1)

    def sample(self, s: torch.Tensor, greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Action in model units and its log-probability (reparameterised for Box)."""
        if greedy and not self.action.discrete:  # the mean action: no std, no log-probability to compute
            a = torch.tanh(self.net(s)[..., : self.action.dim])
            return a, a.new_zeros(a.shape[:-1])
        p, log_std = self.dist(s)
        if self.action.discrete:
            logp_all = F.log_softmax(p, -1)
            idx = p.argmax(-1) if greedy else torch.distributions.Categorical(logits=p).sample()
            return F.one_hot(idx, self.action.dim).float(), logp_all.gather(-1, idx[..., None]).squeeze(-1)
        eps = torch.randn_like(p)
        u = p + eps * log_std.exp()
        a = torch.tanh(u)
        logp = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - torch.log((1 - a.pow(2)).clamp_min(1e-6)).sum(-1)
        return a, logp

    def probs(self, s: torch.Tensor) -> torch.Tensor:
        """Discrete only: action probabilities [..., n]."""
        return F.softmax(self.net(s), -1)
