"""Drawing start offsets — uniform over transitions or prioritized — across one or more parts (shards).

A *part* is one FIFO store: a SegmentIndex (live range [head, tail)) and, when prioritized, a SumTree whose slot
for offset o is o % slots. Uniform: a global index in [0, Σ sizes) picks the part in proportion to its size and
the transition uniformly inside it. Prioritized: P(i) = p_i^α / Σ_k p_k^α over all parts, and the importance
weight is w_i = (N·P(i))^-β / max_k (N·P(k))^-β, the max taken over every stored transition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ami.memory.index import SegmentIndex, SumTree


@dataclass(frozen=True)
class PriorityParams:
    """Prioritized-replay exponents."""

    alpha: float = 0.6
    """Priority exponent: P(i) ∝ (p_i + eps)^alpha (0 = uniform)."""
    beta: float = 0.4
    """Importance-weight exponent (1 = full correction)."""
    eps: float = 1e-6
    """Added to every priority so no stored transition becomes unreachable."""

    def mass(self, priorities: np.ndarray) -> np.ndarray:
        return (np.abs(np.asarray(priorities, np.float64)) + self.eps) ** self.alpha


@dataclass
class Part:
    """One store's live view."""

    index: SegmentIndex
    tree: SumTree | None = None

    def slots(self, offsets: np.ndarray) -> np.ndarray:
        return np.asarray(offsets, np.int64) % self.tree.n

    def offsets_of_slots(self, slots: np.ndarray) -> np.ndarray:
        head = self.index.head
        return head + (slots - head) % self.tree.n

    def add_segment(self, start: int, length: int, mass: float | np.ndarray) -> None:
        if self.tree is not None:
            self.tree.set(self.slots(np.arange(start, start + length)), mass)

    def forget(self, starts: np.ndarray, lens: np.ndarray) -> None:
        if self.tree is not None and len(starts):
            offs = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lens, strict=True)])
            self.tree.set(self.slots(offs), 0.0)

    def live(self, offsets: np.ndarray) -> np.ndarray:
        return (offsets >= self.index.head) & (offsets < self.index.tail)


def draw(parts: list[Part], batch_size: int, rng: np.random.Generator,
         prio: PriorityParams | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (part index [B], offset [B], importance weight [B] float32)."""
    if prio is None:
        sizes = np.array([p.index.transitions for p in parts], np.int64)
        bounds = np.cumsum(sizes)
        g = rng.integers(0, bounds[-1], size=batch_size)
        which = np.searchsorted(bounds, g, side="right")
        heads = np.array([p.index.head for p in parts], np.int64)
        offsets = heads[which] + g - (bounds[which] - sizes[which])
        return which, offsets, np.ones(batch_size, np.float32)
    masses = np.array([p.tree.total for p in parts], np.float64)
    bounds = np.cumsum(masses)
    total = bounds[-1]
    u = rng.random(batch_size) * total
    which = np.minimum(np.searchsorted(bounds, u, side="right"), len(parts) - 1)
    offsets = np.empty(batch_size, np.int64)
    prob = np.empty(batch_size, np.float64)
    for k, p in enumerate(parts):
        sel = which == k
        if not sel.any():
            continue
        local = np.clip(u[sel] - (bounds[k] - masses[k]), 0.0, np.nextafter(masses[k], 0.0))
        slots = p.tree.find(local)
        offsets[sel] = p.offsets_of_slots(slots)
        prob[sel] = p.tree.get(slots) / total
    n = sum(p.index.transitions for p in parts)
    p_min = min(p.tree.min_value for p in parts) / total
    weights = (prob / p_min) ** (-prio.beta) if n else np.ones(batch_size)
    return which, offsets, weights.astype(np.float32)
