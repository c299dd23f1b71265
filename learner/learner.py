"""The learner role: replay -> batches -> agent updates (its own Updater) -> versioned snapshots and checkpoints.

Pure: no Ray, no Redis. The inline backend calls it directly; the Ray learner actor wraps the same class.
Checkpoints are bytes: the driver writes them into the run directory (one atomic writer, cluster/rundir.py), so
the learner may live on another node.
"""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ami.agent.agent import Agent
from ami.agent.update import Updater
from ami.learner.pacing import Every, updates_owed
from ami.memory.core import Batch, ReplayMemory


@dataclass(frozen=True)
class LearnerConfig:
    """How much and how often the learner trains and publishes."""

    batch_size: int = 256
    """Windows per update."""
    window: int = 3
    """Steps per window: the world model's multi-step prediction horizon."""
    updates_per_step: float = 1.0
    """Updates per env step collected (the replay ratio)."""
    warmup_steps: int = 1000
    """Env steps of random play before the first update."""
    warmup_updates: int = 0
    """Updates owed at once when warm-up ends, before the planner first acts on the model (TD-MPC2 trains as
    many updates as it took seed steps there); afterwards `updates_per_step` per step."""
    snapshot_every: int = 50
    """Publish weights every this many updates."""
    checkpoint_every: int = 5000
    """Write a checkpoint every this many updates (0: only at the end)."""

    def owed(self, env_steps: int) -> int:
        """Updates owed in all at this many env steps (the learner's pace and the actors' pause read it)."""
        return updates_owed(env_steps, self.warmup_steps, self.updates_per_step, self.warmup_updates)

    def warming_up(self, env_steps: int) -> bool:
        """Whether a step taken at this many env steps is warm-up (random play in a fresh run, no pause for the
        learner): the inline loop and the Ray actors both read it."""
        return env_steps < self.warmup_steps


def batch_to_dict(batch: Batch) -> dict[str, np.ndarray]:
    """The agent's update input: the sampled columns plus mask and importance weights."""
    return {**batch.data, "mask": batch.mask, "weights": batch.weights}


class Learner:
    """Trains one agent from one replay (owning its optimisers); counts updates and weights versions."""

    def __init__(self, agent: Agent, replay: ReplayMemory, cfg: LearnerConfig):
        self.agent, self.replay, self.cfg = agent, replay, cfg
        self.updater = Updater(agent)
        self.updates = 0
        self.version = 0
        self._snapshots = Every(cfg.snapshot_every)
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ami-sample")
        self._prefetched: Future | None = None
        # the newest value of each metric (the exporter's gauges; some come every few updates only), while the
        # sums are for log lines
        self.latest: dict[str, float] = {}

    def due(self, env_steps: int) -> int:
        """Updates owed at this many env steps under the replay ratio."""
        return max(self.cfg.owed(env_steps) - self.updates, 0)

    def _sample(self) -> Batch:
        return self.replay.sample(self.cfg.batch_size, self.cfg.window)

    def _next_batch(self, more: bool) -> Batch:
        """The prefetched batch (or one sampled now), and the next one started on the sampling thread while this
        one trains, when `more` updates follow. Uniform replay only: prioritized sampling must see the priorities
        the update before it wrote."""
        batch = self._prefetched.result() if self._prefetched is not None else self._sample()
        self._prefetched = None
        if more and not self.replay.prioritized:
            self._prefetched = self._pool.submit(self._sample)
        return batch

    def train(self, n: int) -> bool:
        """Run n updates; True when a new snapshot version became due. Sampling of the next batch overlaps the
        current update; none is in flight once this returns (the replay is then free for its other callers)."""
        published = False
        try:
            for i in range(n):
                published = self._train_one(self._next_batch(more=i + 1 < n)) or published
        finally:
            if self._prefetched is not None:  # an update failed mid-chunk: let its sample finish, then drop it
                self._prefetched.exception()
                self._prefetched = None
        return published

    def _train_one(self, batch: Batch) -> bool:
        """One update on `batch`; True when it made a new snapshot version due."""
        prioritized = self.replay.prioritized  # else no TD errors are copied out for priorities
        m, prio = self.updater.step(batch_to_dict(batch), priorities=prioritized)
        self.latest.update(m)
        if prio is not None:
            self.replay.update_priorities(batch.keys, prio)
        for k, v in m.items():  # some metrics come every few updates only: each key keeps its own count
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1
        self.updates += 1
        if self._snapshots.due(self.updates):
            self.version += 1
            return True
        return False

    def drain_metrics(self) -> dict[str, float]:
        """Means of the update metrics since the last drain."""
        out = {k: v / self._counts[k] for k, v in self._sums.items()}
        self._sums, self._counts = {}, {}
        return out

    # ----- checkpoints --------------------------------------------------------------------------------------
    def checkpoint(self, extra: dict | None = None, arrays: dict | None = None) -> bytes:
        """Model, optimisers, targets and counters (plus the run's `extra` counters) as checkpoint-file bytes;
        `arrays` (a tree of dicts, numpy arrays and numbers, e.g. a replay's state) goes in beside them, its
        arrays as tensors (what a weights_only load accepts)."""
        state = {"agent": self.agent.state_dict(), "updater": self.updater.state_dict(),
                 "counters": {"updates": self.updates, "version": self.version, **(extra or {})},
                 **{k: tensor_tree(v) for k, v in (arrays or {}).items()}}
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    def restore(self, state: dict) -> None:
        """Come back from a checkpoint's state (`checkpoint_state`; load_state_dict puts each tensor on the
        agent's device)."""
        self.agent.load_state_dict(state["agent"])
        self.updater.load_state_dict(state["updater"])
        counters = state["counters"]
        self.updates, self.version = int(counters["updates"]), int(counters["version"])
        self._snapshots = Every(self.cfg.snapshot_every, self.updates)


def checkpoint_state(data: bytes) -> dict:
    """The state of checkpoint bytes, on the CPU, loaded with weights_only=True (no arbitrary code): read once by
    whoever resumes (its "counters" continue the run's counters, the rest goes to `Learner.restore`)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def tensor_tree(tree):
    """A tree of dicts, numpy arrays and numbers with its arrays as tensors (what a weights_only load accepts)."""
    if isinstance(tree, dict):
        return {k: tensor_tree(v) for k, v in tree.items()}
    return torch.from_numpy(np.ascontiguousarray(tree)) if isinstance(tree, np.ndarray) else tree


def array_tree(tree):
    """A checkpoint's tree with its tensors back as numpy arrays (the inverse of `tensor_tree`)."""
    if isinstance(tree, dict):
        return {k: array_tree(v) for k, v in tree.items()}
    return tree.numpy() if isinstance(tree, torch.Tensor) else tree
