"""LocalReplay: the in-process backend (unit tests, the inline trainer). Same semantics as RedisReplay.

Storage is one columnar ring of `capacity_transitions` rows; segments are appended whole and the oldest whole
segments are evicted first. Thread-safe: writers and a sampler may run in different threads.
"""

from __future__ import annotations

import threading

import numpy as np

from ami.memory.core import Batch, Segment
from ami.memory.index import SegmentIndex, SumTree
from ami.memory.limiter import Counts, RateLimiter
from ami.memory.sampling import Part, PriorityParams, draw
from ami.memory.windows import Arena


class LocalReplay:
    """In-process replay memory implementing memory.core.ReplayMemory."""

    def __init__(self, capacity_transitions: int, seed: int | None = None, prioritized: bool = False,
                 priority: PriorityParams | None = None, rate_limiter: RateLimiter | None = None) -> None:
        if capacity_transitions <= 0:
            raise ValueError("capacity_transitions must be positive")
        self.capacity = int(capacity_transitions)
        self._rng = np.random.default_rng(seed)
        self._prio = (priority or PriorityParams()) if prioritized else None
        self._arena = Arena(self.capacity)
        self._part = Part(SegmentIndex(), SumTree(self.capacity) if prioritized else None)
        self._limiter = rate_limiter
        self._cond = threading.Condition()
        self._max_priority = 1.0
        self._next_id = 0
        self._c = dict(inserted_transitions=0, inserted_segments=0, evicted_transitions=0, evicted_segments=0,
                       sampled_windows=0, sample_batches=0)

    @classmethod
    def from_config(cls, config) -> LocalReplay:
        """Build from a memory.config.ReplayConfig."""
        return cls(config.capacity_transitions, seed=config.seed, prioritized=config.prioritized,
                   priority=config.priority_params(), rate_limiter=config.rate_limiter())

    def __repr__(self) -> str:
        return f"LocalReplay(capacity_transitions={self.capacity}, size={self.size()})"

    # ------------------------------------------------------------------ writing
    def add(self, segment: Segment) -> None:
        segment.validate()
        n = len(segment)
        if n > self.capacity:
            raise ValueError(f"segment of {n} steps exceeds capacity {self.capacity}")
        idx = self._part.index
        with self._cond:
            self._arena.check(segment.data)
            while idx.transitions + n > self.capacity:
                _, start, length = idx.pop_front()
                self._part.forget(np.array([start]), np.array([length]))
                self._c["evicted_transitions"] += length
                self._c["evicted_segments"] += 1
            offset = idx.tail
            self._arena.put(offset, segment.data)
            idx.append(self._next_id, offset, n, segment.meta.policy_version)
            if self._prio is not None:
                self._part.add_segment(offset, n, self._prio.mass(self._max_priority))
            self._next_id += 1
            self._c["inserted_transitions"] += n
            self._c["inserted_segments"] += 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ sampling
    def _counts(self) -> Counts:
        return Counts(self._part.index.transitions, self._c["inserted_transitions"], self._c["sampled_windows"])

    def sample(self, batch_size: int, window: int) -> Batch:
        if batch_size <= 0 or window <= 0:
            raise ValueError("batch_size and window must be positive")
        idx = self._part.index
        with self._cond:
            if self._limiter is not None:
                self._limiter.wait(batch_size, self._counts, self._cond.wait)
            elif idx.transitions == 0:
                raise ValueError("cannot sample from an empty replay")
            _, offsets, weights = draw([self._part], batch_size, self._rng, self._prio)
            pos = idx.locate(offsets)
            ends = idx.view("starts")[pos] + idx.view("lens")[pos]
            data, mask = self._arena.gather(offsets, ends, window)
            versions = idx.view("versions")[pos].copy()
            self._c["sampled_windows"] += batch_size
            self._c["sample_batches"] += 1
        return Batch(data=data, mask=mask, weights=weights, keys=offsets.tolist(), versions=versions)

    @property
    def prioritized(self) -> bool:
        """True when sampling follows priorities (update_priorities is then worth calling)."""
        return self._prio is not None

    def update_priorities(self, keys: list, priorities: np.ndarray) -> None:
        if self._prio is None:
            return
        keys = np.asarray(keys, np.int64)
        pr = np.abs(np.asarray(priorities, np.float64)).reshape(-1)
        if keys.shape != pr.shape:
            raise ValueError("keys and priorities must have the same length")
        with self._cond:
            live = self._part.live(keys)
            # duplicates: the last value wins, as with sequential updates
            _, last = np.unique(keys[live][::-1], return_index=True)
            k, p = keys[live][::-1][last], pr[live][::-1][last]
            self._part.tree.set(self._part.slots(k), self._prio.mass(p))
            if pr.size:
                self._max_priority = max(self._max_priority, float(pr.max()))

    # ------------------------------------------------------------------ info
    def size(self) -> int:
        with self._cond:
            return self._part.index.transitions

    def stats(self) -> dict[str, float]:
        with self._cond:
            out = {k: float(v) for k, v in self._c.items()}
            out["size_transitions"] = float(self._part.index.transitions)
            out["size_segments"] = float(len(self._part.index))
            out["capacity_transitions"] = float(self.capacity)
            out["dropped_transitions"] = 0.0
            out["corrupt_skipped"] = 0.0
            out["rate_limit_wait_s"] = self._limiter.waited_s if self._limiter else 0.0
        return out

    def flush(self, timeout_s: float | None = None) -> bool:
        """Nothing is buffered in process; present for interface parity with RedisReplay."""
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalReplay:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
