"""What the driver needs to know about an env id before starting anything."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from cluster.config import ConfigError
from envs import register_envs


@dataclass(frozen=True)
class EnvInfo:
    """Spaces and episode length of one env id."""

    env_id: str
    """Gymnasium id."""
    observation_space: gym.Space
    """Single-env observation space."""
    action_space: gym.Space
    """Single-env action space."""
    max_episode_steps: int | None
    """Time limit of the registered spec, if any."""


def inspect_env(env_id: str) -> EnvInfo:
    """Make the env once to read its spaces; an unknown id becomes a one-line ConfigError."""
    register_envs()
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as e:
        raise ConfigError(f"unknown env id {env_id!r}: {e}") from None
    try:
        env = gym.make(env_id)
    except Exception as e:  # a registered id whose constructor fails is as unusable as an unknown one
        raise ConfigError(f"cannot create env {env_id!r}: {e}") from None
    try:
        return EnvInfo(env_id, env.observation_space, env.action_space, spec.max_episode_steps)
    finally:
        env.close()
