"""The JEPA world model: encoder, target encoder, action-conditioned predictor, latent variable z.

Targets: by default the online encoder under stop-gradient (as TD-MPC2): VICReg's variance/covariance terms
already prevent collapse, so an EMA copy only adds lag and memory; target='ema' switches to an EMA copy
(BYOL/I-JEPA style) for image encoders where the slower target helps, and target='grad' lets gradients into
the target branch too (PLDM-style), where the anti-collapse terms carry all the weight.

z: a Gaussian posterior q(z | s, a, s') in training, kept low-information by a KL to the fixed prior N(0, I);
planning draws z from the prior, so different draws give different plausible futures.

u (latent_action_dim > 0): the latent action of learning by watching (agent/pretrain.py). A separate variable
from z: q(u | s, s') infers what the unseen action did, and in interaction an adapter A maps each real action
into the same space (the predictor always reads u), while z keeps modelling what no action explains.
"""

from __future__ import annotations

import copy

import torch
from gymnasium import spaces
from torch import nn

from ami.agent.actions import ActionSpec
from ami.agent.config import TARGETS, EncoderConfig, WorldModelConfig
from ami.agent.losses import gaussian_kl
from ami.agent.nets import ema_, mlp
from ami.agent.perception import make_encoder


class WorldModel(nn.Module):
    """Encoder + predictor + z posterior + termination head."""

    def __init__(self, obs_space: spaces.Space, action: ActionSpec, enc: EncoderConfig, cfg: WorldModelConfig):
        super().__init__()
        self.cfg = cfg
        self.action = action
        d, a, zd = cfg.latent_dim, action.dim, cfg.z_dim
        self.encoder = make_encoder(obs_space, enc, d)
        self.target_encoder: nn.Module | None = None
        if cfg.target not in TARGETS:
            raise ValueError(f"world_model.target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
        if cfg.target == "ema":
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        ud = cfg.latent_action_dim
        self.predictor = mlp(d + (ud or a) + zd, cfg.hidden, d)
        self.posterior = mlp(2 * d + a, cfg.hidden, 2 * zd, layers=1) if zd > 0 else None
        # latent actions: q(u | s, s') and the adapter u = A(a); absent (no keys) when latent_action_dim is 0
        self.action_posterior = mlp(2 * d, cfg.hidden, 2 * ud, layers=1) if ud > 0 else None
        self.action_adapter = mlp(a, cfg.hidden, ud, layers=1) if ud > 0 else None
        self.done_head = mlp(d + a, cfg.hidden, 1)

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    def encode(self, obs) -> torch.Tensor:
        return self.encoder(obs)

    def encode_target(self, obs) -> torch.Tensor:
        """Prediction targets; carries gradients only with target='grad'."""
        if self.cfg.target == "grad":
            return self.encoder(obs)
        enc = self.target_encoder if self.target_encoder is not None else self.encoder
        with torch.no_grad():
            return enc(obs)

    def update_target(self) -> None:
        if self.target_encoder is not None:
            ema_(self.target_encoder, self.encoder, self.cfg.target_ema)

    def predict(self, s: torch.Tensor, a: torch.Tensor, z: torch.Tensor | None = None,
                sa: torch.Tensor | None = None) -> torch.Tensor:
        """One step in latent space: s' = P(s, a, z). z=None with z enabled means the prior mean (0).
        `sa`: cat([s, a]) when the caller has it (the planner shares it between predictor and heads)."""
        if self.action_adapter is not None:
            return self.predict_latent(s, self.action_adapter(a), z)
        if not self.z_dim:
            return self.predictor(torch.cat([s, a], -1) if sa is None else sa)
        parts = [s, a] if sa is None else [sa]
        parts.append(z if z is not None else s.new_zeros(*s.shape[:-1], self.z_dim))
        return self.predictor(torch.cat(parts, dim=-1))

    def predict_latent(self, s: torch.Tensor, u: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """One step driven by a latent action u (latent_action_dim > 0): s' = P(s, u, z)."""
        parts = [s, u]
        if self.z_dim:
            parts.append(z if z is not None else s.new_zeros(*s.shape[:-1], self.z_dim))
        return self.predictor(torch.cat(parts, -1))

    def infer_action(self, s: torch.Tensor, s_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                            torch.Tensor]:
        """Latent action of a transition: (sample u ~ q(u|s,s'), its mean, KL to N(0, I) in nats)."""
        assert self.action_posterior is not None, "infer_action needs world_model.latent_action_dim > 0"
        mu, log_std = self.action_posterior(torch.cat([s, s_next], -1)).chunk(2, -1)
        log_std = log_std.clamp(-5, 2)
        return mu + torch.randn_like(mu) * log_std.exp(), mu, gaussian_kl(mu, log_std)

    def prior_z(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
        """Draw z from the fixed prior N(0, I) (None when z is disabled)."""
        return torch.randn(*shape, self.z_dim, device=device) if self.z_dim else None

    def infer_z(self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor):
        """Posterior sample z ~ q(z|s,a,s') and its KL to the prior (nats)."""
        assert self.posterior is not None
        mu, log_std = self.posterior(torch.cat([s, a, s_next], -1)).chunk(2, -1)
        log_std = log_std.clamp(-5, 2)
        z = mu + torch.randn_like(mu) * log_std.exp()
        return z, gaussian_kl(mu, log_std)

    def continue_prob(self, s: torch.Tensor, a: torch.Tensor, sa: torch.Tensor | None = None) -> torch.Tensor:
        """Probability that the episode goes on after (s, a): sigmoid(-logit) = 1 - sigmoid(logit)."""
        return torch.sigmoid(-self.done_head(torch.cat([s, a], -1) if sa is None else sa).squeeze(-1))
