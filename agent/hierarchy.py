"""H-JEPA level 2 and the two-level planner.

Level 2 sees the world through level 1: its encoder maps a window of the last k level-1 latents to an abstract
state S; a macro-action encoder squashes the k level-1 actions taken next into a learned latent macro-action
u in [-1, 1]^m; its predictor maps (S_t, u_t, z) to S_{t+k}, the abstract state of the next window. It is trained
in the same update as level 1 (same optimiser, same batch of windows) with its own VICReg terms on S, on level-1
latents under stop-gradient, so level 2 can never distort the level-1 model the reward-task contract relies on.

Windows that reach back before the sampled window are padded by repeating its first latent, which is exactly
how acting pads the window at an episode start, and how a goal (one observation, standing still) becomes an
abstract state: S_goal = E2([s_goal] * k).

Two-level planning (every step, or every `replan_every` steps at level 2): level 2 plans macro-actions that
bring predicted abstract states toward S_goal; its first predicted state is the sub-goal. Level 1 plans k
low-level actions whose predicted window, re-encoded by level 2, lands on that sub-goal. Both levels use the
same Planner (MPPI), each through its own PlanModel adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ami.agent.actions import ActionSpec
from ami.agent.config import HierarchyConfig
from ami.agent.goal_value import GoalValue
from ami.agent.latent_model import OnParts, PlanParts, count_evals
from ami.agent.losses import covariance_penalty, gaussian_kl, masked_mean, variance_hinge
from ami.agent.nets import mlp
from ami.agent.planner import Planner, trajectory_cost


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance per dimension: the same goal metric at both levels."""
    return (a - b).pow(2).mean(-1)


class Level2(nn.Module):
    """Abstract encoder, macro-action encoder, k-step predictor and (optional) z posterior."""

    def __init__(self, latent_dim: int, action_dim: int, cfg: HierarchyConfig):
        super().__init__()
        self.cfg = cfg
        k, d2, m, h = cfg.k, cfg.latent_dim, cfg.macro_dim, cfg.hidden
        self.encoder = mlp(k * latent_dim, h, d2)
        self.macro = mlp(k * action_dim, h, m, layers=1, out_act=nn.Tanh())
        self.predictor = mlp(d2 + m + cfg.z_dim, h, d2)
        self.posterior = mlp(2 * d2 + m, h, 2 * cfg.z_dim, layers=1) if cfg.z_dim else None
        self.value = GoalValue(d2, cfg) if cfg.value_weight else None
        self.action = ActionSpec(False, m, (-1.0,) * m, (1.0,) * m)
        self.low_action: ActionSpec | None = None  # set by the agent: what the macro encoder reads

    def encode(self, window: torch.Tensor) -> torch.Tensor:
        """[..., k, D] level-1 latents -> [..., d2]."""
        return self.encoder(window.flatten(-2))

    def encode_still(self, s: torch.Tensor) -> torch.Tensor:
        """The abstract state of standing at s for k steps (goals, episode starts)."""
        return self.encode(s.unsqueeze(-2).expand(*s.shape[:-1], self.cfg.k, s.shape[-1]))

    def predict(self, S: torch.Tensor, u: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        parts = [S, u]
        if self.cfg.z_dim:
            parts.append(z if z is not None else S.new_zeros(*S.shape[:-1], self.cfg.z_dim))
        # residual: k steps later the abstract state has moved by a macro-sized step, not become a new vector
        return S + self.predictor(torch.cat(parts, -1))

    def windows(self, real: torch.Tensor, act: torch.Tensor, mask: torch.Tensor):
        """Training pairs from level-1 latents real [B, W+1, D], actions [B, W, A], mask [B, W]:
        current windows [B, T, k, D], their macro-actions [B, T, m], next windows [B, T, k, D], valid [B, T]
        with T = W - k + 1 (every start t whose k actions lie inside the window)."""
        k = self.cfg.k
        w = act.shape[1]
        padded = torch.cat([real[:, :1].expand(-1, k - 1, -1), real], 1)  # [B, W+k, D]
        wins = padded.unfold(1, k, 1).transpose(-1, -2)  # [B, W+1, k, D]; wins[:, i] ends at real[:, i]
        t = w - k + 1
        acts = act.unfold(1, k, 1).transpose(-1, -2)  # [B, T, k, A]
        valid = mask.unfold(1, k, 1).min(-1).values  # all k actions are real steps of one episode
        return wins[:, :t], self.macro(acts.flatten(-2)), wins[:, k:k + t], valid

    def loss(self, real: torch.Tensor, act: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Level 2's k-step JEPA loss + its own VICReg terms (+ z limit); zero when windows are shorter than k."""
        c = self.cfg
        if act.shape[1] < c.k:
            return real.new_zeros(()), {}
        cur, u, nxt, valid = self.windows(real, act, mask)
        S = self.encode(cur)
        with torch.no_grad():  # stop-gradient target, as level 1's default
            target = self.encode(nxt)
        z, kl = None, None
        if c.z_dim:
            mu, log_std = self.posterior(torch.cat([S, u, target], -1)).chunk(2, -1)
            log_std = log_std.clamp(-5, 2)
            z = mu + torch.randn_like(mu) * log_std.exp()
            kl = masked_mean(gaussian_kl(mu, log_std), valid)
        pred = masked_mean(distance(self.predict(S, u, z), target), valid)
        flat = S.reshape(-1, S.shape[-1])
        var, cov = variance_hinge(flat), covariance_penalty(flat)
        total = c.pred_weight * pred + c.var_weight * var + c.cov_weight * cov
        if kl is not None:
            total = total + c.z_kl_weight * kl
        metrics = {"l2_loss_prediction": pred.item(), "l2_loss_variance": var.item(),
                   "l2_loss_covariance": cov.item(), "l2_loss_z": kl.item() if kl is not None else 0.0}
        if self.value is not None:
            with torch.no_grad():  # goals: standing still where the window ends, one abstract step on, elsewhere
                flat = real.reshape(-1, real.shape[-1])
                other = flat[torch.randint(0, flat.shape[0], valid.shape, device=flat.device)]
                g_self, g_next, g_other = (self.encode_still(x) for x in (cur[..., -1, :], nxt[..., -1, :], other))
            v_loss, v_metrics = self.value.loss(S, target, g_self, g_next, g_other, valid)
            total = total + c.value_weight * v_loss
            metrics.update(v_metrics)
        return total, metrics

    def update_targets(self) -> None:
        if self.value is not None:
            self.value.update_target()


class ChargedEveryStep:
    """Shared part of the two-level PlanModels: every predicted state is charged in step(), undiscounted, so
    there is no terminal cost and no mode-1 proposal."""

    gamma = 1.0

    def terminal(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x[:, 0])

    def propose(self, x: torch.Tensor) -> None:
        return None


@dataclass
class Level2Model(ChargedEveryStep):
    """PlanModel over abstract states: macro-actions, cost = distance of each predicted state to the goal (plus
    the goal-conditioned critic's cost-to-go when level 2 has one)."""

    level2: Level2
    goal: torch.Tensor  # [E, d2]
    counter: dict

    @property
    def action(self) -> ActionSpec:
        return self.level2.action

    @property
    def z_dim(self) -> int:
        return self.level2.cfg.z_dim

    def _rep(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return x.repeat_interleave(n // x.shape[0], dim=0)

    def step(self, S, u, z):
        count_evals(self.counter, "level2", S.shape[0])
        nxt, goal = self.level2.predict(S, u, z), self._rep(self.goal, S.shape[0])
        cost = distance(nxt, goal)
        if self.level2.value is not None:  # the critic knows the walls the distance does not
            cost = cost + self.level2.cfg.value_plan_weight * self.level2.value(nxt, goal)
        return nxt, cost, torch.ones_like(nxt[:, 0])


@dataclass
class SubgoalModel(ChargedEveryStep, OnParts):
    """Level-1 PlanModel whose state is the flattened window of the last k latents [N, k*D]: each step predicts
    the next latent and charges the distance between level 2's encoding of the new window and the sub-goal."""

    level2: Level2
    subgoal: torch.Tensor  # [E, d2]
    goal: torch.Tensor  # [E, D] level-1 goal latent, for the optional flat term
    counter: dict

    def step(self, x, a, z):
        wm, cfg = self.parts.world_model, self.parts.cfg
        n, d = x.shape[0], wm.cfg.latent_dim
        count_evals(self.counter, "level1", n)
        win = x.view(n, -1, d)
        s_next = wm.predict(win[:, -1], a, z)
        win = torch.cat([win[:, 1:], s_next[:, None]], 1)
        rep = n // self.subgoal.shape[0]
        cost = distance(self.level2.encode(win), self.subgoal.repeat_interleave(rep, 0))
        if cfg.hierarchy.goal_weight:
            cost = cost + cfg.hierarchy.goal_weight * distance(s_next, self.goal.repeat_interleave(rep, 0))
        cost = cost + cfg.cost.energy_weight * a.pow(2).sum(-1)
        return win.flatten(1), cost, torch.ones_like(cost)


class Level2State:
    """Per-env level-2 short-term state: the window of recent latents, level 2's plan and current sub-goal."""

    def __init__(self, window: torch.Tensor, plan: torch.Tensor):
        self.window, self.plan = window, plan
        self.subgoal: torch.Tensor | None = None
        self.age = torch.zeros(window.shape[0], dtype=torch.long)


def _headings(spec: ActionSpec, device: torch.device) -> torch.Tensor:
    """Constant low-level actions to hold: 8 compass headings for 2D Box actions, every one-hot for Discrete,
    the signed unit axes otherwise."""
    if spec.discrete:
        return torch.eye(spec.dim, device=device)
    if spec.dim == 2:
        ang = torch.arange(8, device=device) * (torch.pi / 4)
        return torch.stack([ang.cos(), ang.sin()], -1)
    eye = torch.eye(spec.dim, device=device)
    return torch.cat([eye, -eye])


class TwoLevelPlanner:
    """Level 2 plans macro-actions toward the goal; its first predicted state is level 1's sub-goal."""

    def __init__(self, cfg: HierarchyConfig):
        self.cfg = cfg
        self.counter: dict[str, int] = {}  # world-model evaluations per level, for equal-compute comparisons
        self._planner2: Planner | None = None

    def plan2(self, level2: Level2) -> Planner:
        if self._planner2 is None:
            self._planner2 = Planner(self.cfg.planner, level2.action)
        return self._planner2

    @torch.no_grad()
    def act(self, parts: PlanParts, l2: Level2, planner: Planner, s: torch.Tensor, goal: torch.Tensor, short_term,
            explore: bool) -> torch.Tensor:
        """s, goal: level-1 latents [E, D] -> first low-level actions [E, A] in model units (`planner`: level 1's)."""
        c = self.cfg
        p2 = self.plan2(l2)
        e = s.shape[0]
        st: Level2State | None = short_term.level2
        fresh = torch.as_tensor(short_term.fresh, device=s.device)
        still = s[:, None].expand(e, c.k, s.shape[-1])
        if st is None or st.window.shape[0] != e:
            st = short_term.level2 = Level2State(still.clone(), p2.initial_plan(e, s.device))
            fresh = torch.ones(e, dtype=torch.bool, device=s.device)
        else:
            st.window = torch.where(fresh[:, None, None], still, torch.cat([st.window[:, 1:], s[:, None]], 1))
        S, G = l2.encode(st.window), l2.encode_still(goal)
        due = fresh.cpu() | (st.age % c.replan_every == 0) | (st.subgoal is None)
        if bool(due.any()):
            model2 = Level2Model(l2, G, self.counter)
            warm = torch.where(fresh[:, None, None], p2.initial_plan(e, s.device), p2.shift(st.plan))
            if c.macro_proposals:
                warm = self._best_proposal(model2, S, warm, p2.cfg.horizon)
            _, plan, _ = p2.plan(model2, S, warm, explore=False)
            sub = self._subgoal(l2, S, plan[:, 0], p2.cfg.z_draws)
            mask = due.to(s.device)
            st.plan = torch.where(mask[:, None, None], plan, st.plan)
            st.subgoal = sub if st.subgoal is None else torch.where(mask[:, None], sub, st.subgoal)
            st.age = torch.where(due, torch.zeros_like(st.age), st.age)
        st.age += 1
        model = SubgoalModel(parts, l2, st.subgoal, goal, self.counter)
        a0, plan1, cost = planner.plan(model, st.window.flatten(1), short_term.warm_start(planner), explore)
        short_term.record(s, a0, plan1, cost)
        return a0

    @staticmethod
    def _best_proposal(model: Level2Model, S: torch.Tensor, warm: torch.Tensor, h: int) -> torch.Tensor:
        """The cheapest of the warm start and two-segment macro sequences: hold one low-level heading for k
        steps (its macro code), then another, switching at a quarter, half or three quarters of the horizon.

        Independent per-step noise rarely holds a heading for long, and the corners of the macro box are codes
        no real action chunk produced (the predictor extrapolates through walls there); the codes of real
        constant-heading chunks cover "go round the wall, then to the goal" with in-distribution macros, and
        MPPI then refines the winner locally."""
        l2 = model.level2
        dirs = _headings(l2.low_action, S.device)  # [n, A] low-level actions in model units
        codes = l2.macro(dirs[:, None].expand(-1, l2.cfg.k, -1).flatten(1))  # [n, m]
        switch = sorted({max(h // 4, 1), max(h // 2, 1), max(3 * h // 4, 1)})
        seqs = [torch.cat([c1.expand(j, -1), c2.expand(h - j, -1)]) for c1 in codes for c2 in codes for j in switch]
        cand = torch.stack(seqs)[None].expand(S.shape[0], -1, -1, -1)
        cand = torch.cat([warm[:, None], cand], 1)
        cost = trajectory_cost(model, S, cand)
        return cand[torch.arange(S.shape[0]), cost.argmin(1)]

    @staticmethod
    def _subgoal(l2: Level2, S: torch.Tensor, u: torch.Tensor, draws: int) -> torch.Tensor:
        """The predicted abstract state after the first macro-action, averaged over drawings of level 2's z."""
        if not l2.cfg.z_dim:
            return l2.predict(S, u)
        zs = [torch.randn(S.shape[0], l2.cfg.z_dim, device=S.device) for _ in range(max(draws, 1))]
        return torch.stack([l2.predict(S, u, z) for z in zs]).mean(0)
