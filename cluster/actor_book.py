"""What the driver knows of a Ray run's actors, in memory that does not grow with the run: each actor's last
status (fixed size, actors/tally.py), the counters of its crashed incarnations, the final totals of actors
scaled away, and the weights versions acted with as ranges. No Ray here: cluster/actor_pool.py feeds it."""

from __future__ import annotations

import bisect

SUMMED = ("env_steps", "segments", "lag_sum")
"""Status counters that add up over an actor's incarnations (a crashed one's are carried)."""


class VersionRanges:
    """A set of ints kept as sorted disjoint [lo, hi] ranges: the versions acted with are nearly consecutive,
    so a run that published 100k versions keeps a handful of ranges, not 100k ints."""

    def __init__(self):
        self.ranges: list[list[int]] = []

    def add(self, v: int) -> None:
        r = self.ranges
        k = bisect.bisect_right(r, [v, float("inf")])  # r[k-1] is the last range starting at or below v
        if k and r[k - 1][1] >= v:
            return
        left, right = k and r[k - 1][1] == v - 1, k < len(r) and r[k][0] == v + 1
        if left and right:
            r[k - 1][1] = r.pop(k)[1]
        elif left:
            r[k - 1][1] = v
        elif right:
            r[k][0] = v
        else:
            r.insert(k, [v, v])

    def __iter__(self):
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)


def _add(a: dict, b: dict) -> dict:
    """Status `a` with the summed counters (and latency histogram) of `b` added."""
    out = {**a, **{k: a[k] + b.get(k, 0) for k in SUMMED}}
    if "latency_counts" in b:
        out["latency_counts"] = [x + y for x, y in zip(a["latency_counts"], b["latency_counts"], strict=True)]
    return out


class ActorBook:
    """Actor id -> last status, carried counters of crashed incarnations, totals of actors scaled away."""

    def __init__(self):
        self.status: dict[int, dict] = {}
        self.carried: dict[int, dict] = {}
        self.retired: dict[int, dict] = {}
        self.versions = VersionRanges()

    def report(self, i: int, st: dict) -> list[float]:
        """Keep actor i's status `st` (a drained status() answer); returns its episode returns."""
        for v in st["versions_new"]:
            self.versions.add(v)
        self.status[i] = {**st, "returns": [], "versions_new": []}
        return st["returns"]

    def crashed(self, i: int) -> bool:
        """Actor i's incarnation died: carry its counters into the next one; False when it had not reported since
        its last crash (nothing to carry)."""
        last = self.status.pop(i, None)
        if last is None:
            return False
        self.carried[i] = _add(last, self.carried[i]) if i in self.carried else last
        return True

    def retire(self, i: int) -> None:
        """Actor i was scaled away and is gone: its totals stay counted, once."""
        total = self._total(i)
        self.status.pop(i, None)
        self.carried.pop(i, None)
        if total is not None:
            self.retired[i] = total

    def _total(self, i: int) -> dict | None:
        s, c = self.status.get(i), self.carried.get(i)
        if s is None:
            return c
        return _add(s, c) if c is not None else s

    def totals(self) -> dict[int, dict]:
        """Each actor's status with its crashed incarnations' counters added, scaled-away actors included."""
        out = dict(self.retired)
        out.update({i: self._total(i) for i in self.status.keys() | self.carried.keys()})
        return dict(sorted(out.items()))
