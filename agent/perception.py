"""Perception: encoders chosen from the observation space (vectors, uint8 images, dicts of both)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from ami.agent.config import EncoderConfig
from ami.agent.nets import mlp


def is_image(space: spaces.Space) -> bool:
    """uint8 HWC boxes are images; everything else Box-shaped is a vector."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


class VectorEncoder(nn.Module):
    """Flattened vector -> features, LayerNorm'd hidden layers normalise the raw scale."""

    def __init__(self, space: spaces.Box, cfg: EncoderConfig, out: int):
        super().__init__()
        self.net = mlp(int(math.prod(space.shape)), cfg.hidden, out, max(cfg.layers - 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), -1).float())  # (also scalar boxes: DMC walker's 'height')


class ImageEncoder(nn.Module):
    """uint8 HWC image -> features: a small strided CNN (64x64 -> 8x8; padded, so small images work too)."""

    def __init__(self, space: spaces.Box, cfg: EncoderConfig, out: int):
        super().__init__()
        h, w, c = space.shape
        ch = cfg.cnn_channels
        self.conv = nn.Sequential(
            nn.Conv2d(c, ch, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 3, stride=1, padding=1), nn.SiLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n = self.conv(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(nn.Linear(n, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU(),
                                  nn.Linear(cfg.hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # uint8 HWC -> float CHW in [-0.5, 0.5]
        x = x.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return self.head(self.conv(x))


class DictEncoder(nn.Module):
    """Vector keys flattened and concatenated into one MLP (a proprioceptive Dict such as DMC's is one state
    vector split by name: one MLP sees how its parts relate, and costs a third of three); images and nested
    Dicts get their own encoder each; the parts' features mixed by a linear layer when there are several."""

    def __init__(self, space: spaces.Dict, cfg: EncoderConfig, out: int):
        super().__init__()
        subs = space.spaces
        self.vector_keys = sorted(k for k, s in subs.items() if isinstance(s, spaces.Box) and not is_image(s))
        self.other_keys = sorted(k for k in subs if k not in self.vector_keys)
        n = (1 if self.vector_keys else 0) + len(self.other_keys)
        width = out if n == 1 else cfg.hidden
        auto = dataclasses.replace(cfg, kind="auto")  # each key gets the encoder its own space calls for
        flat = sum(math.prod(subs[k].shape) for k in self.vector_keys)
        self.vector = (VectorEncoder(spaces.Box(-np.inf, np.inf, (flat,)), auto, width) if self.vector_keys
                       else None)
        self.parts = nn.ModuleDict({k: make_encoder(subs[k], auto, width) for k in self.other_keys})
        self.mix = nn.Sequential(nn.SiLU(), nn.Linear(width * n, out)) if n > 1 else nn.Identity()

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [self.parts[k](x[k]) for k in self.other_keys]
        if self.vector is not None:
            feats.insert(0, self.vector(torch.cat([x[k].reshape(len(x[k]), -1).float() for k in self.vector_keys],
                                                  dim=-1)))
        return self.mix(torch.cat(feats, dim=-1)) if len(feats) > 1 else feats[0]


def make_encoder(space: spaces.Space, cfg: EncoderConfig, out: int) -> nn.Module:
    """Pick the encoder for `space` (cfg.kind='auto') or the one cfg.kind names."""
    if isinstance(space, spaces.Dict):
        return DictEncoder(space, cfg, out)
    if not isinstance(space, spaces.Box):
        raise ValueError(f"unsupported observation space {space}")
    kind = cfg.kind
    if kind == "auto":
        kind = "cnn" if is_image(space) else "mlp"
    if kind == "cnn":
        return ImageEncoder(space, cfg, out)
    if kind == "mlp":
        return VectorEncoder(space, cfg, out)
    raise ValueError(f"unknown encoder kind {cfg.kind!r}")


def column(batch: dict, name: str):
    """batch[name], or the Dict observation stored flat as columns 'name.key' (replay columns are arrays)."""
    if name in batch:
        return batch[name]
    prefix = name + "."
    parts = {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)}
    if not parts:
        raise KeyError(name)
    return parts


def flatten_columns(name: str, value) -> dict:
    """{name: array} or, for a Dict observation, {'name.key': array, ...}."""
    if isinstance(value, dict):
        return {f"{name}.{k}": v for k, v in value.items()}
    return {name: value}


def to_device(array, device: torch.device | str) -> torch.Tensor:
    """A numpy array as a tensor on `device`; to a GPU through pinned memory without blocking the host (the
    copy overlaps whatever the host does next, and the GPU orders it before the kernels that read it)."""
    t = torch.as_tensor(np.asarray(array))
    if torch.device(device).type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def obs_to_tensor(obs, device: torch.device) -> torch.Tensor | dict[str, torch.Tensor]:
    """numpy observation batch (array or dict of arrays) -> tensors on device, dtype kept (uint8 stays)."""
    if isinstance(obs, dict):
        return {k: obs_to_tensor(v, device) for k, v in obs.items()}
    t = to_device(obs, device)
    return t if t.dtype == torch.uint8 else t.float()
