"""The belief state: s_t inferred from the recent history, for envs whose one observation does not tell the state.

Choice: a history window, not a recurrent state. The encoder sees the current observation with the K-1 before it
and the actions taken between them ({'obs', 'past_obs', 'past_act'}), and the actor stores that history with
every step it writes, so the learner encodes exactly what the actor saw — a recurrent state would need a burn-in
from the replay and would still differ from the actor's (stale weights, segment cuts). K steps are enough for
what such tasks hide (a velocity is a difference of two positions); zeros stand for the steps before an episode's
first. Everything downstream (predictor, cost, critic, mode-1, planner) works on s_t unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

MODES = ("auto", "on", "off")


def belief_mode(requested: str, partially_observed: bool) -> str:
    """'on' or 'off' for agent.belief: 'auto' follows what the env declares (envs.partial.PARTIALLY_OBSERVED)."""
    if requested not in MODES:
        raise ValueError(f"agent.belief must be 'auto', 'on' or 'off', got {requested!r}")
    if requested == "auto":
        return "on" if partially_observed else "off"
    return requested


def belief_space(obs_space: spaces.Space, action_dim: int, history: int) -> spaces.Dict:
    """What the encoder sees: the observation, the history-1 observations before it, and the actions after each."""
    if not isinstance(obs_space, spaces.Box) or obs_space.dtype == np.uint8:
        raise ValueError("agent.belief needs a vector (Box) observation space")
    if history < 2:
        raise ValueError(f"agent.history must be at least 2 with agent.belief on, got {history}")
    k = history - 1
    return spaces.Dict({"obs": obs_space,
                        "past_obs": spaces.Box(-np.inf, np.inf, (k, *obs_space.shape), np.float32),
                        "past_act": spaces.Box(-1.0, 1.0, (k, action_dim), np.float32)})


def next_history(past_obs: torch.Tensor, past_act: torch.Tensor, obs: torch.Tensor,
                 act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The history at t+1 from the one at t and the step taken: [..., K-1, D] windows shifted by (obs_t, a_t)."""
    return (torch.cat([past_obs[..., 1:, :], obs.unsqueeze(-2).to(past_obs.dtype)], -2),
            torch.cat([past_act[..., 1:, :], act.unsqueeze(-2).to(past_act.dtype)], -2))


class History:
    """Per-env history of observations and model-unit actions, host side (the runner stores it with each step)."""

    def __init__(self, num_envs: int, history: int, obs_shape: tuple[int, ...], action_dim: int):
        k = history - 1
        self.obs = np.zeros((num_envs, k, *obs_shape), np.float32)
        self.act = np.zeros((num_envs, k, action_dim), np.float32)

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of the current history: {'past_obs': [E, K-1, ...], 'past_act': [E, K-1, A]}."""
        return {"past_obs": self.obs.copy(), "past_act": self.act.copy()}

    def push(self, obs: np.ndarray, act: np.ndarray) -> None:
        """Append the step just taken (observation it was taken in, its action in model units)."""
        self.obs = np.concatenate([self.obs[:, 1:], np.asarray(obs, np.float32)[:, None]], 1)
        self.act = np.concatenate([self.act[:, 1:], np.asarray(act, np.float32)[:, None]], 1)

    def reset(self, done: np.ndarray) -> None:
        """A new episode starts from an empty (zero) history."""
        self.obs[done] = 0.0
        self.act[done] = 0.0
