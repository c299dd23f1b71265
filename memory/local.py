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

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """What the replay holds, oldest first, as plain arrays and numbers: its columns row by row, each live
        segment's length and policy version, priorities (prioritized only) and counters. `load` takes it back;
        the inline backend keeps it in its checkpoint so that a resumed run trains on the data it had."""
        with self._cond:
            idx = self._part.index
            rows = np.arange(idx.head, idx.tail) % self.capacity
            out = {"columns": {k: c[rows] for k, c in self._arena.cols.items()},
                   "lens": idx.view("lens").copy(), "versions": idx.view("versions").copy(),
                   "counters": dict(self._c), "max_priority": self._max_priority}
            if self._prio is not None:
                out["mass"] = self._part.tree.get(rows)
            return out

    def load(self, state: dict) -> None:
        """Replace the contents with a `state()` (of this replay or another's). Its newest segments are kept
        when they exceed this capacity; priorities are kept where both replays are prioritized (else a loaded
        transition gets the highest priority seen, as a new one does)."""
        lens = np.asarray(state["lens"], np.int64)
        keep = len(lens) - int(np.searchsorted(np.cumsum(lens[::-1]), self.capacity, side="right"))
        first = int(lens[:keep].sum())
        cols = {k: np.asarray(v)[first:] for k, v in state["columns"].items()}
        lens, versions = lens[keep:], np.asarray(state["versions"], np.int64)[keep:]
        n = int(lens.sum())
        with self._cond:
            self._arena = Arena(self.capacity)
            self._part = Part(SegmentIndex(), SumTree(self.capacity) if self._prio is not None else None)
            self._c = {k: int(v) for k, v in state["counters"].items()}
            self._max_priority = float(state["max_priority"])
            self._next_id = len(lens)
            if n:
                self._arena.put(0, cols)
                starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
                self._part.index.append(np.arange(len(lens)), starts, lens, versions)
            if self._prio is not None and n:
                mass = state.get("mass")
                mass = (np.asarray(mass)[first:] if mass is not None
                        else self._prio.mass(np.full(n, self._max_priority)))
                self._part.tree.set(np.arange(n), mass)
            self._cond.notify_all()

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
