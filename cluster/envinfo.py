"""What the driver needs to know about an env before starting anything."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from ami.cluster.config import ConfigError
from ami.envs.make import EnvSpec, as_spec, episode_decisions, make_env, resolve_id
from ami.envs.partial import is_partially_observed
from ami.envs.spaces import UnsupportedSpace


@dataclass(frozen=True)
class EnvInfo:
    """Spaces and episode length of one env of a run."""

    env_id: str
    """Gymnasium id."""
    observation_space: gym.Space
    """Single-env observation space (float32 where the env's is float64)."""
    action_space: gym.Space
    """Single-env action space (float32 where the env's is float64)."""
    max_episode_steps: int | None
    """Decisions per episode at most (time limit / action repeat), if the env has a limit."""
    partially_observed: bool = False
    """The env declares that one observation does not tell its state (agent.belief=auto turns the belief on)."""


def inspect_env(env: str | EnvSpec) -> EnvInfo:
    """Make the env once to read its spaces; an unknown id or failing constructor becomes a one-line ConfigError."""
    spec = as_spec(env)
    try:
        resolve_id(spec.id)
    except (ImportError, gym.error.Error) as e:
        raise ConfigError(f"unknown env id {spec.id!r}: {e}") from None
    try:
        made = make_env(spec)
    except UnsupportedSpace as e:
        raise ConfigError(f"env {spec.id!r}: {e}") from None
    except Exception as e:  # a registered id whose constructor fails (or bad env_kwargs) is as unusable
        raise ConfigError(f"cannot create env {spec.id!r}: {e}") from None
    try:
        return EnvInfo(spec.id, made.observation_space, made.action_space,
                       episode_decisions(made, spec.action_repeat), is_partially_observed(made))
    finally:
        made.close()
