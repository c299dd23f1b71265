"""Learning by watching: the world model trained on observation-only trajectories (no actions, no rewards).

The unseen action of each step is stood in for by a latent action u ~ q(u | s_t, s_t+1) (WorldModel.infer_action),
kept low-information by a KL to N(0, I) so that it carries what an action would (which way the state moved)
rather than a copy of s_t+1. The predictor rolls the window forward from the first encoding on those u's, with the
same JEPA terms as interaction training (multi-step latent prediction, VICReg variance and covariance). Later,
`ami train --init-from` starts from these weights; its updates teach the adapter u = A(a) to map real actions
into the same space (agent/update.py's alignment term), so the pretrained predictor is usable from the start.
The inverse model sees encodings under stop-gradient: the encoder learns only from predicting, not from making
u easy to infer.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ami.agent.fastmath import fast_fp32_matmul
from ami.agent.losses import covariance_penalty, variance_hinge
from ami.agent.perception import obs_to_tensor
from ami.agent.world_model import WorldModel

PRETRAINED_PREFIX = "world_model."
"""What `ami train --init-from` takes from a pretrained agent: the world model (encoder, predictor, latent-action
modules); cost head, critic and mode-1 have seen no reward and start fresh."""


class PassiveUpdater:
    """Adam on the world model's parameters from windows of observations [B, W+1, ...]."""

    def __init__(self, world_model: WorldModel, lr: float, grad_clip: float, device: torch.device):
        if world_model.action_posterior is None:
            raise ValueError("pretraining needs agent.world_model.latent_action_dim > 0")
        self.wm, self.grad_clip, self.device = world_model, grad_clip, device
        self.params = [p for p in world_model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=lr, fused=device.type in ("cpu", "cuda"))
        self.steps = 0

    def step(self, windows: np.ndarray) -> dict[str, float]:
        """One gradient step on observation windows [B, W+1, ...]; the loss terms as floats."""
        with fast_fp32_matmul(self.device):
            total, terms = passive_loss(self.wm, obs_to_tensor(windows, self.device))
            self.opt.zero_grad(set_to_none=True)
            total.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip, foreach=True)
            self.opt.step()
        self.wm.update_target()
        self.steps += 1
        scalars = {**terms, "loss_total": total, "grad_norm": gnorm}
        return dict(zip(scalars, torch.stack([v.detach().float() for v in scalars.values()]).tolist(), strict=True))


def passive_loss(wm: WorldModel, obs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """JEPA loss of observation windows [B, W+1, ...] with inferred latent actions: (total, its terms)."""
    cfg = wm.cfg
    b, w = obs.shape[0], obs.shape[1] - 1
    flat = obs.reshape(b * (w + 1), *obs.shape[2:])
    s_all = wm.encode(flat).view(b, w + 1, -1)
    # the online encoder under stop-gradient is the default target: no second pass for it
    target = (s_all.detach() if cfg.target == "sg" else wm.encode_target(flat).view(b, w + 1, -1))[:, 1:]
    s, pred, kl = s_all[:, 0], [], []
    for j in range(w):
        u, _, kl_j = wm.infer_action(s_all[:, j].detach(), target[:, j].detach())
        s = wm.predict_latent(s, u)
        pred.append((s - target[:, j]).pow(2).mean(-1))
        kl.append(kl_j)
    rho = cfg.rho ** torch.arange(w, device=obs.device).float()
    pred_loss = (torch.stack(pred, 1) * rho).mean() * w
    kl_loss = (torch.stack(kl, 1) * rho).mean() * w
    emb = s_all[:, 0] if cfg.target != "grad" else torch.cat([s_all[:, 0], target.reshape(b * w, -1)])
    var_loss, cov_loss = variance_hinge(emb), covariance_penalty(emb)
    total = (cfg.pred_weight * pred_loss + cfg.var_weight * var_loss + cfg.cov_weight * cov_loss
             + cfg.latent_action_kl_weight * kl_loss)
    return total, {"loss_prediction": pred_loss, "loss_variance": var_loss, "loss_covariance": cov_loss,
                   "loss_latent_action": kl_loss}


def pretrained_weights(agent_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of a pretrained agent's state_dict that `load_pretrained` puts into a new agent."""
    return {k: v for k, v in agent_state.items() if k.startswith(PRETRAINED_PREFIX)}


def pretrained_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """The world-model weights in a pretraining checkpoint's bytes (weights_only=True: loading runs no code)."""
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return pretrained_weights(state["agent"])


def load_pretrained(agent: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Put pretrained world-model weights into `agent` (shapes must match: the same env and agent config);
    ValueError naming the first mismatch otherwise."""
    own = agent.state_dict()
    for k, v in weights.items():
        if k not in own or own[k].shape != v.shape:
            got = tuple(own[k].shape) if k in own else "no such tensor"
            raise ValueError(f"pretrained tensor {k} {tuple(v.shape)} does not fit this agent ({got})")
    missing = [k for k in own if k.startswith(PRETRAINED_PREFIX) and k not in weights]
    if missing:
        raise ValueError(f"pretrained weights lack {missing[0]} (another agent config?)")
    agent.load_state_dict(weights, strict=False)
