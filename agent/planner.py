"""The planner (the seed's "actor" module): searches action sequences that minimise predicted cost.

(a) sampling MPC: MPPI-style for Box actions, CEM over per-step categoricals for Discrete (exhaustive when
    every sequence fits in the sample budget), warm-started from the shifted previous plan and mixing in
    proposals from the mode-1 policy;
(b) gradient planning: Adam on the action sequence through predictor + cost (alone, or refining (a));
(c) mode-1: the policy alone when the planning budget is zero.
Everything is batched over envs: s0 is [E, D], plans are [E, H, A].
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from ami.agent.actions import ActionSpec
from ami.agent.config import PlannerConfig

COMPILE_BACKEND = "inductor"
"""torch.compile backend of `agent.compile` (inductor fuses the kernels; the suite checks the captured graph on
'aot_eager', which skips inductor's C++ compilation)."""


class PlanModel(Protocol):
    """What the planner needs of a model; the agent's world model + cost + critic, or a known test model."""

    action: ActionSpec
    z_dim: int
    gamma: float

    def step(self, s: torch.Tensor, a: torch.Tensor, z: torch.Tensor | None):
        """-> (next state, cost of (s, a), probability the episode continues)."""

    def terminal(self, s: torch.Tensor) -> torch.Tensor:
        """Cost-to-go estimate at the horizon."""

    def propose(self, s: torch.Tensor) -> torch.Tensor | None:
        """A mode-1 action sample in model units, or None."""


def trajectory_cost(model: PlanModel, s0: torch.Tensor, acts: torch.Tensor, z_draws: int = 1) -> torch.Tensor:
    """Total discounted cost of action sequences acts [E, N, H, A] from s0 [E, D] -> [E, N]."""
    e, n, h, _ = acts.shape
    k = z_draws if model.z_dim else 1
    s = s0[:, None, None].expand(e, k, n, s0.shape[-1]).reshape(e * k * n, -1)
    a_all = acts[:, None].expand(e, k, n, h, acts.shape[-1]).reshape(e * k * n, h, -1)
    total = rollout_cost(model, s, lambda t, _s: a_all[:, t], h)
    return total.view(e, k, n).mean(1)


def rollout_cost(model: PlanModel, s: torch.Tensor, act_at: Callable[[int, torch.Tensor], torch.Tensor],
                 h: int) -> torch.Tensor:
    """Discounted cost [N] of h model steps from latents s [N, D], the action of step t being act_at(t, s_t), plus
    the discounted terminal value of where they end (weighted by the predicted chance of still being alive). The
    planner scores its candidates with it, and mode-1's objective with a horizon (agent/update.py) is the same sum."""
    total, alive, disc = s.new_zeros(s.shape[0]), s.new_ones(s.shape[0]), 1.0
    for t in range(h):
        z = torch.randn(s.shape[0], model.z_dim, device=s.device) if model.z_dim else None
        s_next, c, cont = model.step(s, act_at(t, s), z)
        total = torch.addcmul(total, alive, c, value=disc)  # one kernel per step of this inner loop
        alive, s, disc = alive * cont, s_next, disc * model.gamma
    return torch.addcmul(total, alive, model.terminal(s), value=disc)


class Planner:
    """Mode-2 planning; stateless apart from its config (warm starts come from short-term memory)."""

    def __init__(self, cfg: PlannerConfig, action: ActionSpec, compile: bool = False):
        self.cfg = cfg
        self.action = action
        # the whole sampling search as one graph per shape (`agent.compile`): LayerNorm, SiLU and the MPPI
        # bookkeeping fuse, which is what a CPU decision of ~100 rows is bound by (compiled lazily, on first use)
        self._search = torch.compile(self._mppi, dynamic=False, backend=COMPILE_BACKEND) if compile else self._mppi

    def rows(self, e: int) -> int:
        """Candidate sequences a rollout step evaluates at once for e envs (the rows of its matrix products)."""
        c, n = self.cfg, self.action.dim
        if c.kind in ("policy", "grad"):
            return e
        if self.action.discrete:
            return e * (n ** c.horizon if n ** c.horizon <= c.samples else c.samples + c.policy_samples)
        return e * (c.samples + 1 + c.policy_samples)

    def initial_plan(self, e: int, device: torch.device) -> torch.Tensor:
        """Zero mean (Box) or uniform probabilities (Discrete), [E, H, A]."""
        h, a = self.cfg.horizon, self.action.dim
        if self.action.discrete:
            return torch.full((e, h, a), 1.0 / a, device=device)
        return torch.zeros(e, h, a, device=device)

    def shift(self, plan: torch.Tensor) -> torch.Tensor:
        """Warm start for the next step: drop the executed step, repeat a fresh one at the end."""
        tail = self.initial_plan(plan.shape[0], plan.device)[:, :1]
        return torch.cat([plan[:, 1:], tail], 1)

    def policy_rollouts(self, model: PlanModel, s0: torch.Tensor, n: int) -> torch.Tensor | None:
        """Sequences [E, n, H, A] proposed by rolling mode-1 through the model."""
        if n <= 0 or model.propose(s0) is None:
            return None
        e = s0.shape[0]
        s = s0[:, None].expand(e, n, s0.shape[-1]).reshape(e * n, -1)
        out = []
        for _ in range(self.cfg.horizon):
            a = model.propose(s)
            out.append(a)
            z = torch.randn(s.shape[0], model.z_dim, device=s.device) if model.z_dim else None
            s = model.step(s, a, z)[0]
        return torch.stack(out, 1).view(e, n, self.cfg.horizon, -1)

    @torch.no_grad()
    def plan(self, model: PlanModel, s0: torch.Tensor, warm: torch.Tensor | None = None,
             explore: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (first actions [E, A] in model units, plan to warm-start from [E, H, A], planned cost [E])."""
        kind = self.cfg.kind
        e = s0.shape[0]
        if kind == "policy":
            a = model.propose(s0) if explore else _greedy(model, s0)
            plan = self.initial_plan(e, s0.device)
            return a, plan, model.terminal(s0)
        warm = self.initial_plan(e, s0.device) if warm is None else warm
        if kind in ("mppi", "mppi+grad", "cem"):
            plan, best, cost = (self._categorical if self.action.discrete else self._search)(model, s0, warm)
        elif kind == "grad":
            plan, best, cost = warm, warm, None
        else:
            raise ValueError(f"unknown planner kind {kind!r}")
        if kind.endswith("grad") and not self.action.discrete:
            best = plan = self.refine(model, s0, plan)
            cost = trajectory_cost(model, s0, plan[:, None], self.cfg.z_draws)[:, 0]
        a0 = best[:, 0]
        if explore:
            a0 = self._explore(a0)
        return a0, plan, cost

    def _explore(self, a0: torch.Tensor) -> torch.Tensor:
        if self.action.discrete:
            rand = F.one_hot(torch.randint(0, self.action.dim, a0.shape[:1], device=a0.device), self.action.dim)
            flip = torch.rand(a0.shape[0], 1, device=a0.device) < self.cfg.explore_std
            return torch.where(flip, rand.float(), a0)
        return (a0 + self.cfg.explore_std * torch.randn_like(a0)).clamp(-1, 1)

    def _mppi(self, model: PlanModel, s0: torch.Tensor, warm: torch.Tensor):
        c = self.cfg
        e = s0.shape[0]
        mean = warm.clone()
        std = torch.full_like(mean, c.max_std)
        pol = self.policy_rollouts(model, s0, c.policy_samples)
        for _ in range(c.iterations):
            cand = (mean[:, None] + std[:, None] * torch.randn(e, c.samples, *mean.shape[1:], device=s0.device))
            cand = torch.cat([cand.clamp(-1, 1), mean[:, None]] + ([pol] if pol is not None else []), 1)
            cost = trajectory_cost(model, s0, cand, c.z_draws)
            elite_cost, idx = torch.topk(-cost, min(c.elites, cand.shape[1]), dim=1)
            elite_cost = -elite_cost
            elites = torch.gather(cand, 1, idx[..., None, None].expand(-1, -1, *cand.shape[2:]))
            if c.kind == "cem":  # classic CEM: elites weigh equally
                w = torch.full_like(elite_cost, 1.0 / elite_cost.shape[1])[..., None, None]
            else:  # MPPI: exponential weights of the normalised cost
                w = _weights(elite_cost, c.temperature)[..., None, None]
            mean = (w * elites).sum(1)
            std = ((w * (elites - mean[:, None]).pow(2)).sum(1).sqrt()).clamp(c.min_std, c.max_std)
        # the weighted mean, not one elite: smoother control and exact in the LQR limit
        return mean, mean, elite_cost[:, 0]

    def _categorical(self, model: PlanModel, s0: torch.Tensor, warm: torch.Tensor):
        c = self.cfg
        e, h, n = warm.shape
        if n ** h <= c.samples:  # every sequence fits: search exhaustively, exact argmin
            seqs = torch.tensor(list(itertools.product(range(n), repeat=h)), device=s0.device)
            cand = F.one_hot(seqs, n).float()[None].expand(e, -1, -1, -1)
            cost = trajectory_cost(model, s0, cand, c.z_draws)
            best = cost.argmin(1)
            seq = cand[torch.arange(e), best]
            probs = _weights(cost, c.temperature)[..., None, None]
            return (probs * cand).sum(1), seq, cost.min(1).values
        probs = (0.8 * warm + 0.2 / n)
        pol = self.policy_rollouts(model, s0, c.policy_samples)
        for _ in range(c.iterations):
            idx = torch.distributions.Categorical(probs=probs[:, None].expand(e, c.samples, h, n)).sample()
            cand = F.one_hot(idx, n).float()
            if pol is not None:
                cand = torch.cat([cand, pol], 1)
            cost = trajectory_cost(model, s0, cand, c.z_draws)
            elite_cost, eidx = torch.topk(-cost, min(c.elites, cand.shape[1]), dim=1)
            elites = torch.gather(cand, 1, eidx[..., None, None].expand(-1, -1, h, n))
            w = _weights(-elite_cost, c.temperature)[..., None, None]
            probs = (0.5 * probs + 0.5 * (w * elites).sum(1)).clamp_min(1e-3)
            probs = probs / probs.sum(-1, keepdim=True)
        return probs, elites[:, 0], -elite_cost[:, 0]

    def refine(self, model: PlanModel, s0: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        """Gradient planning: Adam on a tanh-parameterised Box action sequence, through model and cost."""
        u = torch.atanh(init.clamp(-0.999, 0.999)).detach().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=self.cfg.grad_lr)
        with torch.enable_grad():
            for _ in range(self.cfg.grad_steps):
                cost = trajectory_cost(model, s0.detach(), torch.tanh(u)[:, None], self.cfg.z_draws).sum()
                (g,) = torch.autograd.grad(cost, [u])
                opt.zero_grad(set_to_none=True)
                u.grad = g
                opt.step()
        return torch.tanh(u).detach()


def _weights(cost: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of -cost normalised by its spread, so the temperature is scale free."""
    spread = cost.std(dim=1, keepdim=True).clamp_min(1e-6) if cost.shape[1] > 1 else 1.0
    return torch.softmax(-temperature * (cost - cost.min(1, keepdim=True).values) / spread, dim=1)


def _greedy(model: PlanModel, s0: torch.Tensor) -> torch.Tensor:
    greedy = getattr(model, "propose_greedy", None)
    return greedy(s0) if greedy is not None else model.propose(s0)
