"""The cost module: an immutable intrinsic cost and a trainable critic.

Intrinsic cost = task_weight * task(s, a) + goal_weight * |s - s_goal|^2 / D + energy_weight * |a|^2.
Its weights are fixed when the agent is built (frozen config, not parameters): the agent can learn to
*predict* the task cost (a head trained on observed rewards) but never to change what it is charged.
The critic is an ensemble with EMA target networks predicting the discounted sum of future intrinsic cost;
the planner uses it as the terminal cost at its horizon.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ami.agent.config import CostConfig
from ami.agent.nets import ema_, mlp, symexp, symlog


class IntrinsicCost(nn.Module):
    """Hard-wired cost terms; only the task head that *estimates* the env's cost is trained."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: int, cfg: CostConfig):
        super().__init__()
        self.cfg = cfg
        self.task_head = mlp(latent_dim + action_dim, hidden, 1)  # predicts symlog(env cost)

    def observed(self, env_cost: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The intrinsic cost of a real step, from the env's cost (= -reward): the critic's TD signal."""
        return self.cfg.task_weight * env_cost + self.cfg.energy_weight * a.pow(2).sum(-1)

    def forward(self, s: torch.Tensor, a: torch.Tensor, goal: torch.Tensor | None = None,
                sa: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted intrinsic cost of taking a in latent state s (`sa`: cat([s, a]) when the caller has it).
        Terms whose weight is zero are skipped, not multiplied by zero: this runs in the planner's inner loop."""
        c = self.cfg
        total = None
        if c.task_weight:
            x = self.task_head(torch.cat([s, a], -1) if sa is None else sa).squeeze(-1)
            total = symexp(x) if c.task_weight == 1.0 else c.task_weight * symexp(x)
        if c.energy_weight:
            e = c.energy_weight * a.pow(2).sum(-1)
            total = e if total is None else total + e
        if goal is not None and c.goal_weight:
            g = c.goal_weight * self.goal_distance(s, goal)
            total = g if total is None else total + g
        return s.new_zeros(s.shape[:-1]) if total is None else total

    @staticmethod
    def goal_distance(s: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return (s - goal).pow(2).mean(-1)


SCALE_DECAY = 0.999
"""Per-update decay of the critic's running mean |step cost| (~1000 updates of memory)."""


class Critic(nn.Module):
    """Ensemble Q(s, a) of future intrinsic cost, regressed in symlog space or in scaled cost units, with EMA
    target copies."""

    def __init__(self, latent_dim: int, action_dim: int, hidden: int, cfg: CostConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(mlp(latent_dim + action_dim, hidden, 1) for _ in range(cfg.critic_ensemble))
        self.targets = copy.deepcopy(self.members).requires_grad_(False)
        # buffers, not updater state: the planner decodes values with the scale, so it travels with the weights
        self.register_buffer("abs_cost_ema", torch.zeros(()))  # EMA of the mean |step cost|, bias not corrected
        self.register_buffer("scale_updates", torch.zeros(()))
        self.register_buffer("value_scale", torch.ones(()))

    def encode_value(self, q: torch.Tensor) -> torch.Tensor:
        """Cost units -> the space the members regress in."""
        return symlog(q) if self.cfg.critic_symlog else q / self.value_scale

    def decode_value(self, x: torch.Tensor) -> torch.Tensor:
        return symexp(x) if self.cfg.critic_symlog else x * self.value_scale

    @torch.no_grad()
    def track_scale(self, cost: torch.Tensor, valid: torch.Tensor) -> None:
        """Fold a batch's step costs (where `valid`) into the value scale: mean |cost| / (1 - gamma), at least 1,
        so values are O(1) at any reward scale. Measured (RESULTS #9, at 20k steps): HalfCheetah-v5 had 695-1192
        with symlog values (seeds 0, 1) and 4441 with this scale (seed 11); a fixed bound instead of the mean (the
        highest |cost| seen / (1 - gamma)) lifted HalfCheetah too but cut walker-walk from 840 to 171."""
        if self.cfg.critic_symlog or not self.cfg.critic_value_scale:
            return
        batch = (cost.abs() * valid).sum() / valid.sum().clamp(min=1)
        self.scale_updates += 1
        self.abs_cost_ema.lerp_(batch, 1.0 - SCALE_DECAY)
        mean = self.abs_cost_ema / (1.0 - SCALE_DECAY ** self.scale_updates)
        self.value_scale.copy_((mean / (1.0 - self.cfg.gamma)).clamp(min=1.0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the value scale lack its buffers: they start afresh (symlog runs never read them)
        for name, buf in self.named_buffers(recurse=False):
            state_dict.setdefault(prefix + name, buf.clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def raw_q(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """[E, ...] predictions of every member in regression space."""
        x = torch.cat([s, a], -1)
        return torch.stack([m(x).squeeze(-1) for m in self.members])

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Mean over members of Q in cost units."""
        return self.decode_value(self.raw_q(s, a)).mean(0)

    @torch.no_grad()
    def target(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Pessimistic target: the largest predicted cost among target members (clipped double-Q for costs)."""
        x = torch.cat([s, a], -1)
        members = list(self.targets)
        k = self.cfg.target_members
        if 0 < k < len(members):  # drawn on the host's generator: no device sync
            members = [members[i] for i in torch.randperm(len(members))[:k].tolist()]
        # decoding is monotonic: decode the max, not every member
        return self.decode_value(torch.stack([m(x).squeeze(-1) for m in members]).max(0).values)

    def every_action(self, s: torch.Tensor, n: int, target: bool = False) -> torch.Tensor:
        """Discrete spaces: Q of each of the n one-hot actions, [..., n] (the target ensemble if `target`)."""
        eye = torch.eye(n, device=s.device).expand(*s.shape[:-1], n, n)
        s = s[..., None, :].expand(*s.shape[:-1], n, s.shape[-1])
        return self.target(s, eye) if target else self(s, eye)

    def update_targets(self) -> None:
        ema_(self.targets, self.members, self.cfg.tau)
