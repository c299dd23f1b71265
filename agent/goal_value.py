"""Level 2's goal-conditioned critic: the cost-to-go between an abstract state and a goal, learned reward-free.

The latent distance to a goal knows nothing of walls: a planner that follows it parks in front of one, and in a
maze the way round first leads *away* from the goal. The seed's answer to a myopic intrinsic cost is the
trainable critic; for goal tasks it predicts how many abstract steps (k level-1 steps each) separate an abstract
state from a goal. It learns from the same reward-free windows as level 2, by hindsight: the state one abstract
step ahead is one step away, the current state none, and any other state of the batch is one step further than
it is from the next abstract state (TD against an EMA target copy, discounted so unreachable goals stay bounded).
A lower expectile of those targets estimates the shortest route the data shows, not the random walk's average.
Inputs are taken under stop-gradient: the critic reads level 2's space and never shapes it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ami.agent.config import HierarchyConfig
from ami.agent.losses import masked_mean
from ami.agent.nets import ema_, mlp


class GoalValue(nn.Module):
    """V(S, G): discounted abstract steps from S to G, in [0, 1 / (1 - gamma)]."""

    def __init__(self, latent_dim: int, cfg: HierarchyConfig):
        super().__init__()
        self.cfg = cfg
        self.net = mlp(2 * latent_dim, cfg.hidden, 1)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.vmax = 1.0 / (1.0 - cfg.value_gamma)

    def forward(self, S: torch.Tensor, G: torch.Tensor, target: bool = False) -> torch.Tensor:
        net = self.target if target else self.net
        # the net regresses V / vmax, so every target lies in [0, 1] whatever the discount
        return net(torch.cat([S, G], -1)).squeeze(-1) * self.vmax

    def loss(self, S: torch.Tensor, S_next: torch.Tensor, G_self: torch.Tensor, G_next: torch.Tensor,
             G_other: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S, S_next: abstract states one abstract step apart [B, T, d2]; goals (abstract encodings of standing
        still at: the last state of S's window, of S_next's window, a random state of the batch); valid [B, T]."""
        c = self.cfg
        S, S_next = S.detach(), S_next.detach()
        with torch.no_grad():
            y_other = (1.0 + c.value_gamma * self(S_next, G_other, target=True)).clamp(1.0, self.vmax)
        v_self, v_next, v_other = self(S, G_self), self(S, G_next), self(S, G_other)
        err_other = y_other - v_other
        # lower expectile: targets below the prediction (a shorter route seen in the data) weigh more
        w = torch.where(err_other < 0, 1.0 - c.value_expectile, c.value_expectile)
        scale = self.vmax ** 2  # losses in units of (V / vmax)^2, like the net's output
        loss = (masked_mean(v_self.pow(2), valid) + masked_mean((v_next - 1.0).pow(2), valid)
                + masked_mean(w * err_other.pow(2), valid)) / scale
        return loss, {"l2_loss_value": loss.item(), "l2_value_mean": masked_mean(v_other.detach(), valid).item()}

    def update_target(self) -> None:
        ema_(self.target, self.net, self.cfg.value_tau)
