"""Samples-per-insert rate limiter, shared by LocalReplay and RedisReplay.

A batch of n windows may be drawn once the replay holds at least `min_size_to_sample` transitions and
    sampled + n <= samples_per_insert * inserted + error_buffer
where `sampled` counts windows drawn so far and `inserted` counts transitions ever inserted. Otherwise the
sampler waits (the writers are never blocked), so the learner cannot outrun data collection.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class RateLimitTimeout(TimeoutError):
    """The sampler waited longer than the limiter's timeout for enough inserts."""


@dataclass(frozen=True)
class Counts:
    """What the limiter needs to know about the replay at one instant."""

    size: int
    """Transitions stored now."""
    inserted: int
    """Transitions ever inserted."""
    sampled: int
    """Windows ever sampled."""


class RateLimiter:
    """Blocks a sampler that is ahead of `samples_per_insert` × inserted (None disables the ratio check)."""

    def __init__(self, samples_per_insert: float | None = None, min_size_to_sample: int = 1,
                 error_buffer: float = 0.0, timeout_s: float | None = None, poll_s: float = 0.002) -> None:
        if samples_per_insert is not None and samples_per_insert <= 0:
            raise ValueError("samples_per_insert must be positive (or None)")
        self.samples_per_insert = samples_per_insert
        self.min_size_to_sample = max(1, int(min_size_to_sample))
        self.error_buffer = float(error_buffer)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.waited_s = 0.0

    def allows(self, c: Counts, n: int) -> bool:
        if c.size < self.min_size_to_sample:
            return False
        if self.samples_per_insert is None:
            return True
        return c.sampled + n <= self.samples_per_insert * c.inserted + self.error_buffer

    def wait(self, n: int, counts: Callable[[], Counts], sleep: Callable[[float], object] = time.sleep) -> Counts:
        """Return fresh counts once n windows may be sampled; `sleep(s)` may return early (e.g. a Condition)."""
        t0 = time.monotonic()
        try:
            while True:
                c = counts()
                if self.allows(c, n):
                    return c
                left = None if self.timeout_s is None else self.timeout_s - (time.monotonic() - t0)
                if left is not None and left <= 0:
                    raise RateLimitTimeout(
                        f"waited {self.timeout_s}s to sample {n} windows: size={c.size} "
                        f"(min {self.min_size_to_sample}), inserted={c.inserted}, sampled={c.sampled}, "
                        f"samples_per_insert={self.samples_per_insert}")
                sleep(self.poll_s if left is None else min(self.poll_s, left))
        finally:
            self.waited_s += time.monotonic() - t0
