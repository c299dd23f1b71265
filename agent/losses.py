"""Loss terms of the JEPA update and representation-health statistics."""

from __future__ import annotations

import torch


def variance_hinge(x: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """VICReg variance: mean over dims of relu(1 - std_d) across the batch; keeps every dimension alive."""
    std = torch.sqrt(x.var(dim=0) + eps)
    return torch.relu(1.0 - std).mean()


def covariance_penalty(x: torch.Tensor) -> torch.Tensor:
    """VICReg covariance: squared off-diagonal covariance / D; spreads information across dimensions."""
    n, d = x.shape
    x = x - x.mean(dim=0)
    cov = (x.T @ x) / max(n - 1, 1)
    off = cov - torch.diag(torch.diag(cov))
    return off.pow(2).sum() / d


def gaussian_kl(mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, std) || N(0, I)) summed over the last dim: the information z carries, in nats."""
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_std) - 1 - 2 * log_std).sum(-1)


@torch.no_grad()
def representation_health(x: torch.Tensor) -> dict[str, float]:
    """Per-dimension std (min, mean) and effective rank (exp entropy of normalised singular values)."""
    std = x.float().std(dim=0)
    xc = x.float() - x.float().mean(dim=0)
    sv = torch.linalg.svdvals(xc)
    p = sv / sv.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    return {"embed_std_min": float(std.min()), "embed_std_mean": float(std.mean()),
            "effective_rank": float(rank)}


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over entries where mask is 1 (x and mask broadcastable)."""
    m = mask.expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)
