"""Making the env a run plays from its id: any gymnasium id (also `module:Id`, whose module registers it, and
DeepMind Control through shimmy as `dm_control/<domain>-<task>-v0`), keyword arguments for `gymnasium.make`, an
action repeat, and the spaces the agent models (envs/spaces.py).

Steps are counted as the agent sees them: with action repeat k one step is one decision, k simulator steps (as
TD-MPC2 and MR.Q count DMC: their 100k row is 100k decisions at k = 2). float64 observations and actions
(DMC, some MuJoCo ids) become float32 here, so the replay's schema, read from the spaces, matches what is
stored.
"""

from __future__ import annotations

import importlib
import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from ami.envs import register_envs
from ami.envs.spaces import action_adapter, observation_adapter

DMC_PREFIX = "dm_control/"
"""Namespace of shimmy's DeepMind Control ids."""
DMC_ACTION_REPEAT = 2
"""Action repeat of DMC ids unless the run sets one: the peers' protocol (TD-MPC2 `envs/dmcontrol.py`, MR.Q
`env_preprocessing.py`), so a step budget here means what it means in their tables."""


@dataclass(frozen=True)
class EnvSpec:
    """Everything that makes one env of a run: what `gymnasium.make` gets and how actions are repeated."""

    id: str
    """Gymnasium id; `module:Id` imports module first (it registers Id)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of `gymnasium.make` (run.env_kwargs)."""
    action_repeat: int = 1
    """Simulator steps per decision; rewards are summed over them (run.action_repeat)."""


def as_spec(env: str | EnvSpec) -> EnvSpec:
    return env if isinstance(env, EnvSpec) else EnvSpec(env)


def default_action_repeat(env_id: str) -> int:
    """The action repeat an id plays at unless the run says otherwise."""
    return DMC_ACTION_REPEAT if resolve_id(env_id).startswith(DMC_PREFIX) else 1


def resolve_id(env_id: str) -> str:
    """The registered id behind `env_id`, with whatever registers it imported: built-in ids, `module:Id`, and
    DMC ids (shimmy registers them when imported). Raises ImportError / gymnasium errors for the caller."""
    register_envs()
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
        env_id = name
    if env_id.startswith(DMC_PREFIX) and env_id not in gym.registry:
        # dm_control logs a deprecation of its own model files at every env made: noise in every run's output
        logging.getLogger("absl").setLevel(logging.ERROR)
        with warnings.catch_warnings():  # dm_control probes for a display it does not need to simulate
            warnings.simplefilter("ignore")
            try:
                importlib.import_module("shimmy")
            except ImportError:
                raise ImportError(f"{env_id} needs DeepMind Control: pip install 'ami-agent[dmc]'") from None
    gym.spec(env_id)  # unknown ids fail here, with gymnasium's own message
    return env_id


def make_env(env: str | EnvSpec, render_mode: str | None = None) -> gym.Env:
    """One env of `env`, with float32 spaces and its action repeat."""
    spec = as_spec(env)
    kwargs = dict(spec.kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (see resolve_id)
        out = gym.make(resolve_id(spec.id), **kwargs)
    return wrap(out, spec.action_repeat)


def make_vector_env(env: str | EnvSpec, num_envs: int) -> gym.vector.VectorEnv:
    """`num_envs` envs of `env` stepped together; autoreset in the same step (see actors/runner.py)."""
    return gym.vector.SyncVectorEnv([lambda: make_env(env)] * num_envs,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def wrap(env: gym.Env, action_repeat: int) -> gym.Env:
    """`env` in the spaces the agent models (envs/spaces.py: float32 for float64, one-hot Discrete observations,
    Tuple as Dict, MultiBinary / MultiDiscrete actions as Box) with its action repeated `action_repeat` times."""
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    obs = observation_adapter(env.observation_space)
    if obs is not None:
        env = gym.wrappers.TransformObservation(env, obs.convert, obs.space)
    act = action_adapter(env.action_space)
    if act is not None:
        env = gym.wrappers.TransformAction(env, act.convert, act.space)
    return env


def episode_decisions(env: gym.Env, action_repeat: int) -> int | None:
    """Decisions per episode at most: the spec's time limit, else dm_control's own step limit (shimmy's specs
    carry none), in simulator steps divided by the action repeat."""
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if limit is None:
        limit = getattr(getattr(env.unwrapped, "_env", None), "_step_limit", None)
    if limit is None or not math.isfinite(limit):
        return None
    return math.ceil(int(limit) / action_repeat)


class ActionRepeat(gym.Wrapper):
    """Each action held for k simulator steps (fewer when the episode ends); the rewards are summed."""

    def __init__(self, env: gym.Env, k: int):
        super().__init__(env)
        self.k = k

    def step(self, action):
        total = 0.0
        for _ in range(self.k):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info
