"""The replay-memory contract shared by actors (writers) and the learner (sampler).

A *segment* is T consecutive steps of one env, stored columnar. Every step row holds the transition
(obs_t, action_t, reward_t, terminated_t, truncated_t, next_obs_t), so a segment never needs its neighbour to
be complete; windows sampled from it are masked after an episode end or past the segment's last step instead
of being stitched to anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

SCHEMA_VERSION = 1

# Columns every segment carries (obs/next_obs may be split into 'obs.<key>' columns for Dict observations).
# Extra columns (e.g. "plan_action") are allowed and travel untouched.
REQUIRED_COLUMNS = ("obs", "action", "reward", "terminated", "truncated", "next_obs")


def missing_columns(names) -> list[str]:
    """REQUIRED_COLUMNS absent from `names`; a Dict observation travels flat, as 'obs.<key>' / 'next_obs.<key>'."""
    return [c for c in REQUIRED_COLUMNS if c not in names and not any(k.startswith(c + ".") for k in names)]


@dataclass(frozen=True)
class SegmentMeta:
    """Where a segment came from; travels with it through the replay."""

    actor_id: int
    """Id of the actor process that wrote it."""
    env_id: str
    """Gymnasium id of the env it was played in."""
    episode_id: int
    """Episode counter, unique per (actor_id, env index)."""
    first_step: int
    """Index inside the episode of the segment's first step."""
    policy_version: int
    """Weights version of the agent that chose the actions."""
    schema_version: int = SCHEMA_VERSION
    """Layout version of the encoded record."""


@dataclass(frozen=True)
class Segment:
    """T consecutive steps of one env: every column has T rows along axis 0."""

    data: dict[str, np.ndarray]
    """Columnar arrays keyed by column name; at least REQUIRED_COLUMNS."""
    meta: SegmentMeta
    """Provenance."""

    def __len__(self) -> int:
        return int(len(self.data["reward"]))

    def validate(self) -> None:
        """Raise ValueError if columns are missing or of unequal length."""
        missing = missing_columns(self.data)
        if missing:
            raise ValueError(f"segment lacks columns {missing}")
        n = len(self)
        bad = {k: len(v) for k, v in self.data.items() if len(v) != n}
        if bad or n == 0:
            raise ValueError(f"segment columns must share a non-zero length {n}, got {bad}")


@dataclass
class Batch:
    """Windows sampled from the replay.

    data[k] is shaped [B, W, ...]; mask[b, j] is True when step j of window b is a real transition of the same
    episode as step 0 (False past an episode end or past the end of the segment). Masked rows hold copies of
    the last valid row, so they are finite, but they must not enter any loss.
    """

    data: dict[str, np.ndarray]
    """Columns, [B, W, ...]."""
    mask: np.ndarray
    """[B, W] bool."""
    weights: np.ndarray
    """[B] float32 importance weights (all ones for uniform sampling)."""
    keys: list = field(default_factory=list)
    """Opaque handles of the sampled items, for update_priorities."""
    versions: np.ndarray | None = None
    """[B] int64 policy version that produced each window (for lag statistics)."""


@runtime_checkable
class ReplayMemory(Protocol):
    """What actors and the learner need from a replay backend (LocalReplay, RedisReplay)."""

    def add(self, segment: Segment) -> None:
        """Store one segment, evicting the oldest segments past capacity (in transitions)."""

    def sample(self, batch_size: int, window: int) -> Batch:
        """Draw batch_size windows of `window` steps, start steps uniform over stored transitions
        (or prioritized when configured)."""

    def size(self) -> int:
        """Stored transitions."""

    @property
    def prioritized(self) -> bool:
        """True when sampling follows priorities set through update_priorities."""

    def update_priorities(self, keys: list, priorities: np.ndarray) -> None:
        """Set the priorities of sampled items (no-op for uniform replay)."""

    def stats(self) -> dict[str, float]:
        """Counters: inserts, samples, evictions, drops, corrupt-skipped, ..."""

    def close(self) -> None:
        """Release connections/resources."""
