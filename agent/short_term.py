"""Short-term memory: per-env state the agent carries between steps of an episode."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch


class ShortTermMemory:
    """The previous plan (the planner's warm start), goal latents and a short (s, a, cost) history per env."""

    def __init__(self, num_envs: int, history: int = 16):
        self.num_envs = num_envs
        self.plan: torch.Tensor | None = None
        self.goal: torch.Tensor | None = None
        self.level2 = None  # agent.hierarchy.Level2State while acting with the two-level planner
        self.belief = None  # agent.belief.History while acting with a belief state (made by the agent)
        self.history: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque(maxlen=history)
        self._fresh = np.ones(num_envs, dtype=bool)

    def warm_start(self, planner) -> torch.Tensor | None:
        """The previous plan shifted by one step; envs that just reset start from the planner's prior."""
        if self.plan is None:
            return None
        warm = planner.shift(self.plan)
        if self._fresh.any():
            fresh = torch.as_tensor(self._fresh, device=warm.device)
            init = planner.initial_plan(self.num_envs, warm.device)
            warm = torch.where(fresh[:, None, None], init, warm)
        return warm

    @property
    def fresh(self) -> np.ndarray:
        """Envs whose episode started since the last recorded step."""
        return self._fresh.copy()

    def record(self, latent: torch.Tensor, action: torch.Tensor, plan: torch.Tensor, cost: torch.Tensor) -> None:
        self.plan = plan
        self.history.append((latent, action, cost))
        self._fresh[:] = False

    def reset(self, done: np.ndarray | None = None) -> None:
        """Forget the plan of envs whose episode ended (all envs when done is None)."""
        if done is None:
            self._fresh[:] = True
            self.plan = None
            self.history.clear()
            self.belief = None
        else:
            self._fresh |= np.asarray(done, dtype=bool)
            if self.belief is not None:
                self.belief.reset(np.asarray(done, dtype=bool))
