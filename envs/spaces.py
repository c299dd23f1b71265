"""The spaces the agent models, and adapters from the other gymnasium spaces users bring.

The agent sees Box observations (vectors, uint8 images), Dicts of them, and Box or Discrete actions. Here:
- observations: Discrete(n) becomes its one-hot Box(0, 1, (n,)) (FrozenLake, Taxi), MultiBinary a 0/1 Box,
  MultiDiscrete its concatenated one-hots, Tuple a Dict keyed "0", "1", ... (then flattened as every Dict is),
  float64 Boxes float32 (the replay's schema is read from the spaces);
- actions: MultiBinary(n) and MultiDiscrete(nvec) are searched as Box(-1, 1) actions and mapped back (bit i is
  a_i > 0; component i is the bin of a_i among nvec[i] equal bins), Discrete(n, start) as Discrete(n), float64
  Boxes as float32.
Any other space (Text, Graph, Sequence, OneOf, a Tuple or Dict of actions) raises `UnsupportedSpace`, which the
driver reports before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces


class UnsupportedSpace(ValueError):
    """A space no adapter maps onto what the agent models."""


@dataclass(frozen=True)
class Adapter:
    """The space the agent sees and the map between it and the env's."""

    space: spaces.Space
    """What the agent sees."""
    convert: Callable
    """Observations: env value -> agent value. Actions: agent value -> env value."""


def observation_adapter(space: spaces.Space) -> Adapter | None:
    """How the agent sees observations of `space`; None when it sees them as they are."""
    if isinstance(space, spaces.Tuple):
        space = spaces.Dict({str(i): s for i, s in enumerate(space.spaces)})
        inner = observation_adapter(space)
        keys = list(space.spaces)
        return Adapter((inner or Adapter(space, None)).space,
                       lambda obs, f=(inner.convert if inner else None): _as_dict(obs, keys, f))
    if isinstance(space, spaces.Dict):
        parts = {k: observation_adapter(s) for k, s in space.spaces.items()}
        if all(p is None for p in parts.values()):
            return None
        seen = spaces.Dict({k: p.space if p else space.spaces[k] for k, p in parts.items()})
        return Adapter(seen, lambda obs: {k: parts[k].convert(v) if parts[k] else v for k, v in obs.items()})
    if isinstance(space, spaces.Box):
        if space.dtype != np.float64:
            return None
        box = spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32)
        return Adapter(box, lambda obs: np.asarray(obs, np.float32))
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return Adapter(spaces.Box(0.0, 1.0, (n,), np.float32), lambda obs: _one_hot(np.asarray(obs) - start, n))
    if isinstance(space, spaces.MultiBinary):
        return Adapter(spaces.Box(0.0, 1.0, (int(np.prod(space.shape)),), np.float32),
                       lambda obs: np.asarray(obs, np.float32).reshape(-1))
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        nvec, start = space.nvec.astype(int), space.start.astype(int)
        return Adapter(spaces.Box(0.0, 1.0, (int(nvec.sum()),), np.float32), lambda obs: np.concatenate(
            [_one_hot(v - s, n) for v, s, n in zip(obs, start, nvec, strict=True)]))
    raise UnsupportedSpace(f"observation space {space} is not supported (Box, Discrete, MultiBinary, "
                           "MultiDiscrete, Dict and Tuple of them are)")


def action_adapter(space: spaces.Space) -> Adapter | None:
    """How the agent acts in `space`; None when it acts in it as it is."""
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return None if start == 0 else Adapter(spaces.Discrete(int(space.n)), lambda a: np.int64(a) + start)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        if space.dtype != np.float64:
            return None
        box = spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32)
        return Adapter(box, lambda a: a)  # the simulator casts on its own
    if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1:
        return Adapter(spaces.Box(-1.0, 1.0, space.shape, np.float32), lambda a: (np.asarray(a) > 0).astype(np.int8))
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        nvec, start = space.nvec.astype(np.int64), space.start.astype(np.int64)
        return Adapter(spaces.Box(-1.0, 1.0, nvec.shape, np.float32), lambda a: start + _bins(a, nvec))
    raise UnsupportedSpace(f"action space {space} is not supported (Box, Discrete, MultiBinary and "
                           "MultiDiscrete are)")


def _bins(a, nvec: np.ndarray) -> np.ndarray:
    """a in [-1, 1]^k -> the index of its bin among nvec[i] equal bins of [-1, 1] (1 falls in the last)."""
    u = (np.clip(np.asarray(a, np.float64), -1.0, 1.0) + 1.0) / 2.0
    return np.minimum((u * nvec).astype(np.int64), nvec - 1)


def _one_hot(i, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[int(i)] = 1.0
    return out


def _as_dict(obs, keys: list[str], inner: Callable | None) -> dict:
    d = dict(zip(keys, obs, strict=True))
    return inner(d) if inner else d
