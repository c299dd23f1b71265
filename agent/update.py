"""The update step: JEPA multi-step prediction + VICReg + z limit + cost/termination heads + critic TD,
then mode-1 policy improvement. Batches are windows [B, W, ...] with a validity mask (see memory.core.Batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from agent.goal import state_obs
from agent.losses import covariance_penalty, masked_mean, representation_health, variance_hinge
from agent.nets import symlog
from agent.perception import column, obs_to_tensor

if TYPE_CHECKING:
    from agent.agent import Agent


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


class Updater:
    """Optimisers and running statistics of one agent's training."""

    def __init__(self, agent: Agent):
        self.agent = agent
        o = agent.cfg.optim
        modules = [agent.world_model, agent.cost, agent.critic.members]
        if agent.hierarchy is not None:  # level 2 trains jointly with level 1, in the same optimiser step
            modules.append(agent.hierarchy)
        wm_params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.model_opt = torch.optim.Adam(wm_params, lr=o.lr)
        self.policy_opt = torch.optim.Adam(agent.policy.parameters(), lr=o.policy_lr)
        self.q_scale = 1.0  # running spread of Q, normalises the policy objective across tasks
        self.last_priorities: np.ndarray | None = None

    def state_dict(self) -> dict:
        return {"model_opt": self.model_opt.state_dict(), "policy_opt": self.policy_opt.state_dict(),
                "q_scale": self.q_scale}

    def load_state_dict(self, state: dict) -> None:
        self.model_opt.load_state_dict(state["model_opt"])
        self.policy_opt.load_state_dict(state["policy_opt"])
        self.q_scale = float(state["q_scale"])

    def step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        ag = self.agent
        dev, cfg = ag.device, ag.cfg
        wmc, cc = cfg.world_model, cfg.cost
        wm = ag.world_model
        mask = torch.as_tensor(batch["mask"], device=dev).float()
        b, w = mask.shape
        obs, next_obs = column(batch, "obs"), column(batch, "next_obs")
        if ag.goal_conditioned:  # the goal key is no part of the dynamics: never copied to the device
            obs, next_obs = state_obs(obs), state_obs(next_obs)
        obs, next_obs = obs_to_tensor(obs, dev), obs_to_tensor(next_obs, dev)
        act = ag.action.to_model(batch["action"], dev)
        env_cost = -torch.as_tensor(batch["reward"], device=dev).float()
        term = torch.as_tensor(batch["terminated"], device=dev).float()
        isw = torch.as_tensor(batch.get("weights", np.ones(b)), device=dev).float()[:, None]
        rho = wmc.rho ** torch.arange(w, device=dev).float()
        mw = mask * rho * isw  # per-step weight of every temporal loss

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
            pred_err.append((s - target[:, j]).pow(2).mean(-1))
        zs = torch.stack(states, 1)  # latent at which action j is taken, [B, W, D]
        pred_loss = masked_mean(torch.stack(pred_err, 1), mw) * w
        z_loss = masked_mean(torch.stack(klz, 1), mw) * w if klz else torch.zeros((), device=dev)
        # anti-collapse on every embedding that carries gradients
        emb = s0 if wmc.target != "grad" else torch.cat([s0, target.reshape(b * w, -1)])
        var_loss = variance_hinge(emb)
        cov_loss = covariance_penalty(emb)

        cost_pred = ag.cost.task_symlog(zs, act)
        cost_loss = masked_mean((cost_pred - symlog(env_cost)).pow(2), mw) * w
        done_logit = wm.done_head(torch.cat([zs, act], -1)).squeeze(-1)
        done_loss = masked_mean(F.binary_cross_entropy_with_logits(done_logit, term, reduction="none"), mw) * w

        with torch.no_grad():
            nxt = target.detach().reshape(b * w, -1)
            v_next = self._target_value(nxt).view(b, w)
            y = n_step_targets(ag.cost.observed(env_cost, act), term, mask, v_next, cc.gamma, cc.n_step)
        q = ag.critic.raw_q(zs, act)  # [E, B, W]
        td = (q - ag.critic.encode_value(y)[None]).pow(2)
        critic_loss = masked_mean(td.mean(0), mw) * w

        total = (wmc.pred_weight * pred_loss + wmc.var_weight * var_loss + wmc.cov_weight * cov_loss
                 + wmc.z_kl_weight * z_loss + wmc.cost_weight * cost_loss + wmc.done_weight * done_loss
                 + cc.critic_weight * critic_loss)
        l2_metrics = {}
        if ag.hierarchy is not None:
            # level-1 latents of the window's real states, under stop-gradient (see agent/hierarchy.py)
            real = torch.cat([s0.detach()[:, None], target.detach()], 1)
            l2_loss, l2_metrics = ag.hierarchy.loss(real, act, mask)
            total = total + l2_loss
        self.model_opt.zero_grad(set_to_none=True)
        total.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(
            [p for g in self.model_opt.param_groups for p in g["params"]], cfg.optim.grad_clip)
        self.model_opt.step()
        self.last_priorities = td.mean(0)[:, 0].detach().sqrt().cpu().numpy()

        # goal tasks act by planning alone (mode-1 is trained on a critic that knows no goals)
        pol = {} if ag.goal_conditioned else self._policy_step(zs.detach(), act, mask)
        ag.critic.update_targets()
        wm.update_target()
        if ag.hierarchy is not None:
            ag.hierarchy.update_targets()
        out = {"loss_prediction": pred_loss.item(), "loss_variance": var_loss.item(),
               "loss_covariance": cov_loss.item(), "loss_z": z_loss.item(), "loss_cost": cost_loss.item(),
               "loss_done": done_loss.item(), "loss_critic": critic_loss.item(), "loss_total": total.item(),
               "grad_norm": float(gnorm), **pol, **l2_metrics, **representation_health(s0.detach())}
        return out

    def _target_value(self, s: torch.Tensor) -> torch.Tensor:
        """V_target(s') for the TD target: target critic at the current mode-1 policy."""
        ag = self.agent
        if ag.action.discrete:
            return (ag.policy.probs(s) * ag.critic.every_action(s, ag.action.dim, target=True)).sum(-1)
        a, _ = ag.policy.sample(s)
        return ag.critic.target(s, a)

    def _policy_step(self, zs: torch.Tensor, act: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
        ag, o = self.agent, self.agent.cfg.optim
        s = zs.reshape(-1, zs.shape[-1])
        m = mask.reshape(-1)
        if ag.action.discrete:
            q = ag.critic.every_action(s, ag.action.dim).detach()
            logits = ag.policy.net(s)
            p, logp = F.softmax(logits, -1), F.log_softmax(logits, -1)
            expected = (p * q).sum(-1)
            neg_entropy = (p * logp).sum(-1)
            qs = q
        else:
            a, logp_a = ag.policy.sample(s)
            expected = ag.critic(s, a)
            neg_entropy = logp_a
            qs = expected.detach()
        spread = float(torch.quantile(qs.flatten(), 0.95) - torch.quantile(qs.flatten(), 0.05))
        self.q_scale = 0.99 * self.q_scale + 0.01 * max(spread, 1e-2)
        loss = masked_mean(expected / self.q_scale + o.entropy_coef * neg_entropy, m)
        if o.bc_weight:
            if ag.action.discrete:
                bc = -(F.log_softmax(ag.policy.net(s), -1) * act.reshape(-1, act.shape[-1])).sum(-1)
            else:
                bc = (ag.policy.sample(s, greedy=True)[0] - act.reshape(-1, act.shape[-1])).pow(2).sum(-1)
            loss = loss + o.bc_weight * masked_mean(bc, m)
        self.policy_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(ag.policy.parameters()))
        self.policy_opt.step()
        return {"loss_policy": loss.item(), "q_scale": self.q_scale}
