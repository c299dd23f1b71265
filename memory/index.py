"""Bookkeeping shared by both backends: the FIFO index of live segments and a sum/min tree for priorities.

Segments are numbered by *offset*: the count of transitions inserted (into this store or shard) before them.
FIFO eviction removes whole segments from the front, so the live transitions are always the contiguous offset
range [head, tail) and a start offset drawn uniformly from it is uniform over stored transitions.
"""

from __future__ import annotations

import numpy as np


class SegmentIndex:
    """Live segments in insertion order: id, start offset, length, policy version (numpy-backed deque)."""

    _FIELDS = ("ids", "starts", "lens", "versions")

    def __init__(self) -> None:
        self._buf = {f: np.zeros(64, np.int64) for f in self._FIELDS}
        self._lo = 0
        self._hi = 0
        self._tail = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    def view(self, name: str) -> np.ndarray:
        """Live values of one field ("ids", "starts", "lens", "versions"), oldest first."""
        return self._buf[name][self._lo:self._hi]

    @property
    def head(self) -> int:
        """Offset of the oldest live transition (== tail when empty)."""
        return int(self._buf["starts"][self._lo]) if len(self) else self._tail

    @property
    def tail(self) -> int:
        """Offset one past the newest live transition."""
        return self._tail

    @property
    def transitions(self) -> int:
        return self.tail - self.head

    def append(self, ids, starts, lens, versions) -> None:
        """Append segments (arrays or scalars); starts must continue from the current tail."""
        cols = [np.atleast_1d(np.asarray(x, np.int64)) for x in (ids, starts, lens, versions)]
        n = len(cols[0])
        if n == 0:
            return
        if self._hi + n > len(self._buf["ids"]):
            live, need = len(self), len(self) + n
            size = max(64, 2 * need)
            for f in self._FIELDS:
                new = np.zeros(size, np.int64)
                new[:live] = self._buf[f][self._lo:self._hi]
                self._buf[f] = new
            self._lo, self._hi = 0, live
        for f, c in zip(self._FIELDS, cols, strict=True):
            self._buf[f][self._hi:self._hi + n] = c
        self._hi += n
        self._tail = int(cols[1][-1] + cols[2][-1])

    def reset(self, tail: int = 0) -> None:
        self._lo = self._hi = 0
        self._tail = tail

    def drop_before(self, head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Forget segments starting before `head`; returns their (ids, starts, lens)."""
        starts = self.view("starts")
        k = int(np.searchsorted(starts, head, side="left"))
        out = (self.view("ids")[:k].copy(), starts[:k].copy(), self.view("lens")[:k].copy())
        self._lo += k
        if not len(self):
            self._tail = max(self._tail, head)
        return out

    def pop_front(self) -> tuple[int, int, int]:
        """Remove the oldest segment; returns (id, start, length)."""
        i = self._lo
        self._lo += 1
        return int(self._buf["ids"][i]), int(self._buf["starts"][i]), int(self._buf["lens"][i])

    def locate(self, offsets: np.ndarray) -> np.ndarray:
        """Positions (into the view arrays) of the segments holding each live offset."""
        return np.searchsorted(self.view("starts"), offsets, side="right") - 1


class SumTree:
    """Vectorised sum tree (plus min tree) over `n` slots of non-negative mass; empty slots hold 0."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.depth = max(0, (n - 1).bit_length())
        self.size = 1 << self.depth
        self.sum = np.zeros(2 * self.size, np.float64)
        self.min = np.full(2 * self.size, np.inf, np.float64)

    def set(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set slot masses; a value of 0 empties the slot (and removes it from the min)."""
        slots = np.asarray(slots, np.int64)
        if not slots.size:
            return
        values = np.broadcast_to(np.asarray(values, np.float64), slots.shape)
        i = slots + self.size
        self.sum[i] = values
        self.min[i] = np.where(values > 0, values, np.inf)
        for _ in range(self.depth):
            i = np.unique(i >> 1)
            self.sum[i] = self.sum[2 * i] + self.sum[2 * i + 1]
            self.min[i] = np.minimum(self.min[2 * i], self.min[2 * i + 1])

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.sum[np.asarray(slots, np.int64) + self.size]

    @property
    def total(self) -> float:
        return float(self.sum[1])

    @property
    def min_value(self) -> float:
        """Smallest non-zero slot mass (inf when empty)."""
        return float(self.min[1])

    def find(self, u: np.ndarray) -> np.ndarray:
        """Slots such that the prefix mass before the slot ≤ u < prefix + mass (u in [0, total))."""
        u = np.array(u, np.float64)
        i = np.ones(u.shape, np.int64)
        for _ in range(self.depth):
            left = self.sum[2 * i]
            right = u >= left
            u = np.where(right, u - left, u)
            i = 2 * i + right
        slots = i - self.size
        # float round-off can land on an empty leaf at the right edge: step back to the last non-empty one
        bad = self.sum[i] <= 0
        if bad.any():
            nz = np.flatnonzero(self.sum[self.size:self.size + self.n] > 0)
            if nz.size:
                pos = np.clip(np.searchsorted(nz, slots[bad]), 0, nz.size - 1)
                slots[bad] = nz[pos]
        return slots
