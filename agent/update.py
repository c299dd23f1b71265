"""The update step: JEPA multi-step prediction + VICReg + z limit + cost/termination heads + critic TD,
then mode-1 policy improvement. Batches are windows [B, W, ...] with a validity mask (see memory.core.Batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ami.agent.belief import next_history
from ami.agent.fastmath import fast_fp32_matmul
from ami.agent.goal import state_obs
from ami.agent.latent_model import LatentModel
from ami.agent.losses import covariance_penalty, masked_mean, representation_health, variance_hinge
from ami.agent.nets import symlog
from ami.agent.perception import column, obs_to_tensor, to_device
from ami.agent.planner import rollout_cost

if TYPE_CHECKING:
    from ami.agent.agent import Agent


def _flat(obs, b: int, w: int):
    """[B, W, ...] -> [B*W, ...] for arrays or dicts of arrays."""
    if isinstance(obs, dict):
        return {k: _flat(v, b, w) for k, v in obs.items()}
    return obs.reshape(b * w, *obs.shape[2:])


def _first(obs):
    return {k: v[:, 0] for k, v in obs.items()} if isinstance(obs, dict) else obs[:, 0]


def n_step_targets(cost: torch.Tensor, term: torch.Tensor, mask: torch.Tensor, v_next: torch.Tensor,
                   gamma: float, n_step: int) -> torch.Tensor:
    """TD targets [B, W]: up to n real costs of the window, then the bootstrap V(s') of the last one used.

    Backward recursion G_j = c_j + gamma (1 - term_j) (G_{j+1} if step j+1 is valid and inside the n-step
    reach, else V(s'_j)); a window that meets an episode end stops there, so nothing crosses episodes."""
    b, w = cost.shape
    out = torch.empty_like(cost)
    for j in range(w):
        last = min(j + n_step, w) - 1
        g = cost[:, last] + gamma * (1 - term[:, last]) * v_next[:, last]
        for k in range(last - 1, j - 1, -1):
            follow = torch.where(mask[:, k + 1] > 0, g, v_next[:, k])
            g = cost[:, k] + gamma * (1 - term[:, k]) * follow
        out[:, j] = g
    return out


def bootstrap_positions(mask: torch.Tensor, n_step: int) -> torch.Tensor:
    """[B, U] window steps whose V(s') `n_step_targets` can read: each target's last step min(j + n, W) - 1,
    cut to the window's last valid step. Values elsewhere never reach a valid target, so the target critic
    runs on B * U rows instead of B * W (U = W - n + 1 when n <= W, else 1). Static shapes: no host sync."""
    b, w = mask.shape
    lasts = sorted({min(j + n_step, w) - 1 for j in range(w)})
    last_valid = mask.sum(1).long() - 1  # windows are valid up to an episode or segment end, then masked
    return torch.minimum(torch.tensor(lasts, device=mask.device)[None], last_valid[:, None])



def _align_loss(wm, s0: torch.Tensor, target: torch.Tensor, act: torch.Tensor, mw: torch.Tensor) -> torch.Tensor:
    """||A(a_j) - E[q(u | s_j, s_j+1)]||^2 over the window: the adapter maps each real action onto the latent
    action the (pretrained) inverse model sees in that transition; the inverse model is the teacher, not trained."""
    real = torch.cat([s0[:, None], target[:, :-1]], 1).detach()  # encodings of the states actions were taken in
    with torch.no_grad():
        _, mu, _ = wm.infer_action(real, target.detach())
    return masked_mean((wm.action_adapter(act) - mu).pow(2).mean(-1).float(), mw) * mw.shape[1]


class Updater:
    """Optimisers and running statistics of one agent's training (the learner owns it; acting copies of the
    agent never build one)."""

    def __init__(self, agent: Agent):
        self.agent = agent
        o = agent.cfg.optim
        modules = [agent.world_model, agent.cost, agent.critic.members]
        if agent.hierarchy is not None:  # level 2 trains jointly with level 1, in the same optimiser step
            modules.append(agent.hierarchy)
        self.model_params = [p for m in modules for p in m.parameters() if p.requires_grad]
        # fused Adam: one kernel for every parameter (the per-tensor loop cost ~10% of a CPU update)
        fused = agent.device.type in ("cpu", "cuda")
        self.model_opt = torch.optim.Adam(self.model_params, lr=o.lr, fused=fused)
        self.policy_opt = torch.optim.Adam(agent.policy.parameters(), lr=o.policy_lr, fused=fused)
        # running spread of Q, normalises the policy objective across tasks; a tensor, so no host sync per update
        self.q_scale = torch.ones((), device=agent.device)
        # lowest and highest intrinsic cost of one step seen so far: what bounds every value (`_value_bounds`)
        self.cost_range = torch.tensor([float("inf"), float("-inf")], device=agent.device)
        self.steps = 0

    def state_dict(self) -> dict:
        return {"model_opt": self.model_opt.state_dict(), "policy_opt": self.policy_opt.state_dict(),
                "q_scale": float(self.q_scale), "steps": self.steps, "cost_range": self.cost_range.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.model_opt.load_state_dict(state["model_opt"])
        self.policy_opt.load_state_dict(state["policy_opt"])
        self.q_scale.fill_(float(state["q_scale"]))
        self.steps = int(state.get("steps", 0))
        if "cost_range" in state:  # (checkpoints written before the bound have none: it is relearned from batches)
            self.cost_range.copy_(torch.tensor(state["cost_range"]))

    def _autocast(self):
        dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.agent.cfg.optim.autocast]
        return torch.autocast(self.agent.device.type, dtype=dtype, enabled=dtype is not None)

    def step(self, batch: dict[str, np.ndarray], priorities: bool = False) -> tuple[dict[str, float],
                                                                                 np.ndarray | None]:
        """One gradient step of world model, cost head, critic and mode-1 on a batch of windows: (metrics, each
        window's TD error when `priorities`, else None; prioritized replay only: it costs a device-to-host copy)."""
        with fast_fp32_matmul(self.agent.device):
            return self._step(batch, priorities)

    def _tensors(self, batch: dict[str, np.ndarray]) -> tuple:
        """The batch on the device: (obs, next_obs, act, env_cost, term, mask, per-step loss weights)."""
        ag = self.agent
        dev = ag.device
        mask = to_device(batch["mask"], dev).float()
        w = mask.shape[1]
        obs, next_obs = column(batch, "obs"), column(batch, "next_obs")
        if ag.goal_conditioned:  # the goal key is no part of the dynamics: never copied to the device
            obs, next_obs = state_obs(obs), state_obs(next_obs)
        obs, next_obs = obs_to_tensor(obs, dev), obs_to_tensor(next_obs, dev)
        act = ag.action.to_model(batch["action"], dev)
        if ag.belief:  # the history the actor saw with each step, and the one it saw next (shifted by the step)
            past_obs, past_act = (to_device(batch[k], dev).float() for k in ("past_obs", "past_act"))
            next_past = next_history(past_obs, past_act, obs, act)
            obs = {"obs": obs, "past_obs": past_obs, "past_act": past_act}
            next_obs = {"obs": next_obs, "past_obs": next_past[0], "past_act": next_past[1]}
        env_cost = -to_device(batch["reward"], dev).float()
        term = to_device(batch["terminated"], dev).float()
        isw = to_device(batch["weights"], dev).float()[:, None] if "weights" in batch else 1.0
        rho = ag.cfg.world_model.rho ** torch.arange(w, device=dev).float()
        return obs, next_obs, act, env_cost, term, mask, mask * rho * isw

    def _model_loss(self, obs, next_obs, act, env_cost, term, mask, mw):
        """World model, heads and critic: (total loss, its terms, z_j latents, s0, targets, TD errors)."""
        ag = self.agent
        wmc, cc, wm = ag.cfg.world_model, ag.cfg.cost, ag.world_model
        b, w = mask.shape
        s0 = wm.encode(_first(obs))
        target = wm.encode_target(_flat(next_obs, b, w)).view(b, w, -1)
        states, pred_err, klz, s = [], [], [], s0
        for j in range(w):
            states.append(s)
            z = None
            if wm.z_dim:
                z, kl_j = wm.infer_z(s, act[:, j], target[:, j])
                klz.append(kl_j)
            s = wm.predict(s, act[:, j], z)
            pred_err.append((s.float() - target[:, j].float()).pow(2).mean(-1))
        zs = torch.stack(states, 1).float()  # latent at which action j is taken, [B, W, D]
        pred_loss = masked_mean(torch.stack(pred_err, 1), mw) * w
        z_loss = masked_mean(torch.stack(klz, 1).float(), mw) * w if klz else torch.zeros((), device=mw.device)
        # anti-collapse on every embedding that carries gradients
        emb = (s0 if wmc.target != "grad" else torch.cat([s0, target.reshape(b * w, -1)])).float()
        var_loss = variance_hinge(emb)
        cov_loss = covariance_penalty(emb)

        sa = torch.cat([zs, act], -1)  # one input for the cost head, the done head and every critic member
        cost_loss = masked_mean((ag.cost.task_head(sa).squeeze(-1).float() - symlog(env_cost)).pow(2), mw) * w
        done_logit = wm.done_head(sa).squeeze(-1).float()
        done_loss = masked_mean(F.binary_cross_entropy_with_logits(done_logit, term, reduction="none"), mw) * w

        with torch.no_grad():
            y = self._td_targets(target.detach().float(), env_cost, act, term, mask)
        q = torch.stack([m(sa).squeeze(-1) for m in ag.critic.members]).float()  # [E, B, W]
        td = (q - ag.critic.encode_value(y)[None]).pow(2)
        critic_loss = masked_mean(td.mean(0), mw) * w

        total = (wmc.pred_weight * pred_loss + wmc.var_weight * var_loss + wmc.cov_weight * cov_loss
                 + wmc.z_kl_weight * z_loss + wmc.cost_weight * cost_loss + wmc.done_weight * done_loss
                 + cc.critic_weight * critic_loss)
        terms = {"loss_prediction": pred_loss, "loss_variance": var_loss, "loss_covariance": cov_loss,
                 "loss_z": z_loss, "loss_cost": cost_loss, "loss_done": done_loss, "loss_critic": critic_loss}
        if wm.action_adapter is not None:
            terms["loss_align"] = align = _align_loss(wm, s0, target, act, mw)
            total = total + wmc.latent_action_align_weight * align
        return total, terms, zs, s0, target, td

    def _step(self, batch: dict[str, np.ndarray], priorities: bool) -> tuple[dict[str, float], np.ndarray | None]:
        ag, cfg = self.agent, self.agent.cfg
        obs, next_obs, act, env_cost, term, mask, mw = self._tensors(batch)
        with self._autocast():
            total, terms, zs, s0, target, td = self._model_loss(obs, next_obs, act, env_cost, term, mask, mw)
            l2_metrics = {}
            if ag.hierarchy is not None:
                # level-1 latents of the window's real states, under stop-gradient (see agent/hierarchy.py)
                real = torch.cat([s0.detach()[:, None], target.detach()], 1).float()
                l2_loss, l2_metrics = ag.hierarchy.loss(real, act, mask)
                total = total + l2_loss
        self.model_opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model_params, cfg.optim.grad_clip, foreach=True)
        self.model_opt.step()
        prio = td.mean(0)[:, 0].detach().sqrt().cpu().numpy() if priorities else None

        # goal tasks act by planning alone (mode-1 is trained on a critic that knows no goals)
        pol = {} if ag.goal_conditioned else self._policy_step(zs.detach(), act, mask)
        ag.critic.update_targets()
        ag.world_model.update_target()
        if ag.hierarchy is not None:
            ag.hierarchy.update_targets()
        scalars = {**terms, "loss_total": total, "grad_norm": gnorm, **pol}
        # one device-to-host transfer for every scalar, not one per loss term
        out = dict(zip(scalars, torch.stack([v.detach().float() for v in scalars.values()]).tolist(), strict=True))
        out.update(l2_metrics)
        if self.steps % cfg.optim.health_every == 0:  # an SVD: measured every few updates, not every one
            out.update(representation_health(s0.detach()))
        self.steps += 1
        return out, prio

    def _td_targets(self, nxt: torch.Tensor, env_cost: torch.Tensor, act: torch.Tensor, term: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """n-step TD targets [B, W]; the target value runs only where a target can read it."""
        ag, cc = self.agent, self.agent.cfg.cost
        b, w = mask.shape
        pos = bootstrap_positions(mask, cc.n_step)  # [B, U]
        rows = torch.arange(b, device=nxt.device)[:, None]
        v = self._target_value(nxt[rows, pos].reshape(-1, nxt.shape[-1])).float().view(pos.shape)
        cost = ag.cost.observed(env_cost, act)
        valid = mask > 0
        ag.critic.track_scale(cost, valid)
        lo, hi = self._value_bounds(cost, valid)
        v_next = torch.zeros(b, w, device=nxt.device).scatter_(1, pos, v.clamp(lo, hi))
        return n_step_targets(cost, term, mask, v_next, cc.gamma, cc.n_step)

    def _value_bounds(self, cost: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[min(lo, 0), max(hi, 0)] / (1 - gamma) for the lowest and highest step cost seen so far: no discounted sum
        of such costs, ended by termination or not, leaves it, so bootstrapped values are clamped into it. Values
        inside are left exactly as they are. Why: in symlog space the backup barely contracts large values
        (symlog(c + gamma symexp(x)) ~ x + log gamma), so an error the policy seeks out can grow without end —
        measured on Hopper-v5: Q's spread rose from 3e2 at 5k steps to 2e32 at 82k and the run died on NaN."""
        lo = torch.where(valid, cost, float("inf")).min()
        hi = torch.where(valid, cost, float("-inf")).max()
        self.cost_range = torch.stack([torch.minimum(self.cost_range[0], lo), torch.maximum(self.cost_range[1], hi)])
        scale = 1.0 / (1.0 - self.agent.cfg.cost.gamma)
        return self.cost_range[0].clamp(max=0) * scale, self.cost_range[1].clamp(min=0) * scale

    def _target_value(self, s: torch.Tensor) -> torch.Tensor:
        """V_target(s') for the TD target: target critic at the current mode-1 policy."""
        ag = self.agent
        if ag.action.discrete:
            return (ag.policy.probs(s) * ag.critic.every_action(s, ag.action.dim, target=True)).sum(-1)
        a, _ = ag.policy.sample(s)
        return ag.critic.target(s, a)

    def _policy_step(self, zs: torch.Tensor, act: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        ag, o = self.agent, self.agent.cfg.optim
        horizon = 0 if ag.action.discrete else o.policy_horizon
        # with a horizon, from each window's first latent (the encoded one): the rollout is the objective's cost
        s, m, acts = ((zs[:, 0], mask[:, 0], act[:, 0]) if horizon else
                      (zs.reshape(-1, zs.shape[-1]), mask.reshape(-1), act.reshape(-1, act.shape[-1])))
        with self._autocast():
            if ag.action.discrete:
                q = ag.critic.every_action(s, ag.action.dim).detach().float()
                logits = ag.policy.net(s).float()
                p, logp = F.softmax(logits, -1), F.log_softmax(logits, -1)
                expected = (p * q).sum(-1)
                neg_entropy = (p * logp).sum(-1)
                qs = q
            elif horizon:  # mode-2's objective of mode-1's actions: mode-1 amortises the planner
                a0, logp_a = ag.policy.sample(s)
                expected = rollout_cost(LatentModel(ag.parts), s,
                                        lambda t, st: a0 if t == 0 else ag.policy.sample(st)[0], horizon).float()
                neg_entropy = logp_a.float()
                qs = expected.detach()
            else:
                a, logp_a = ag.policy.sample(s)
                expected = ag.critic(s, a).float()
                neg_entropy = logp_a.float()
                qs = expected.detach()
            lo, hi = torch.quantile(qs.flatten(), torch.tensor([0.05, 0.95], device=qs.device))
            self.q_scale.mul_(0.99).add_(0.01 * (hi - lo).clamp_min(1e-2))
            loss = masked_mean(expected / self.q_scale + o.entropy_coef * neg_entropy, m)
            if o.bc_weight:
                if ag.action.discrete:
                    bc = -(F.log_softmax(ag.policy.net(s), -1) * acts).sum(-1)
                else:
                    bc = (ag.policy.sample(s, greedy=True)[0] - acts).pow(2).sum(-1)
                loss = loss + o.bc_weight * masked_mean(bc.float(), m)
        self.policy_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(ag.policy.parameters()))
        self.policy_opt.step()
        return {"loss_policy": loss, "q_scale": self.q_scale}
