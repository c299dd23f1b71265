"""Action spaces in model units: Box actions live in [-1, 1]^A, Discrete actions are one-hot vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces

from ami.agent.perception import to_device


@dataclass(frozen=True)
class ActionSpec:
    """What the planner searches over and how it maps back to the env."""

    discrete: bool
    """True for gymnasium Discrete spaces."""
    dim: int
    """Box: action dimension; Discrete: number of actions (one-hot width)."""
    low: tuple[float, ...] = ()
    """Box lower bounds (env units)."""
    high: tuple[float, ...] = ()
    """Box upper bounds (env units)."""

    @staticmethod
    def from_space(space: spaces.Space) -> ActionSpec:
        if isinstance(space, spaces.Discrete):
            return ActionSpec(True, int(space.n))
        if isinstance(space, spaces.Box) and len(space.shape) == 1:
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise ValueError("Box action spaces must be bounded")
            return ActionSpec(False, int(space.shape[0]), tuple(map(float, space.low)),
                              tuple(map(float, space.high)))
        raise ValueError(f"unsupported action space {space}")

    def to_model(self, action, device: torch.device) -> torch.Tensor:
        """Env actions [..., A] or [...] (ints) -> model actions [..., dim] float."""
        a = to_device(action, device)
        if self.discrete:
            return torch.nn.functional.one_hot(a.long(), self.dim).float()
        low = torch.tensor(self.low, device=device)
        high = torch.tensor(self.high, device=device)
        return (2 * (a.float() - low) / (high - low) - 1).clamp(-1, 1)

    def to_env(self, a: torch.Tensor) -> np.ndarray:
        """Model actions [..., dim] -> env actions (ints for Discrete)."""
        if self.discrete:
            return a.argmax(-1).cpu().numpy().astype(np.int64)
        low = np.asarray(self.low, dtype=np.float32)
        high = np.asarray(self.high, dtype=np.float32)
        x = a.clamp(-1, 1).detach().cpu().numpy().astype(np.float32)
        return low + (x + 1) * 0.5 * (high - low)
