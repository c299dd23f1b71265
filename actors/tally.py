"""What an actor reports to the driver, kept so that a report has the same size after a day as after a minute:
running sums, a fixed histogram of broadcast latencies, and two drained lists (episode returns and the weights
versions acted with since the last report), which the driver folds into its own bounded figures
(cluster/actor_book.py). The driver asks every poll (runtime.poll_s), so a list that grew with the run would
cost every poll more."""

from __future__ import annotations

import bisect
import math

LATENCY_EDGES: tuple[float, ...] = tuple(1e-4 * 1.25 ** k for k in range(73))
"""Upper bounds (seconds) of the broadcast-latency buckets: 0.1 ms to ~950 s in steps of 25 %, so a percentile
read from them is within ~12 % (one more bucket counts what lies above)."""


def latency_bucket(seconds: float) -> int:
    return bisect.bisect_left(LATENCY_EDGES, seconds)


def latency_percentile(counts: list[int], q: float) -> float | None:
    """The q-th percentile (0-100) of the latencies counted in `counts` (LATENCY_EDGES buckets), as the
    geometric middle of the bucket it falls in; None without any."""
    total = sum(counts)
    if not total:
        return None
    rank, seen, k = q / 100 * total, 0, 0
    while seen + counts[k] < rank or not counts[k]:  # the bucket where the count passes the rank
        seen += counts[k]
        k += 1
    if k == 0:
        return LATENCY_EDGES[0]
    if k >= len(LATENCY_EDGES):
        return LATENCY_EDGES[-1]
    return math.sqrt(LATENCY_EDGES[k - 1] * LATENCY_EDGES[k])


class ActorTally:
    """One actor incarnation's counters (the actor holds its lock around every call)."""

    def __init__(self):
        self.episodes = 0
        self.segments = 0
        self.lag_sum = 0
        self.lag_max = 0
        self.latency_counts = [0] * (len(LATENCY_EDGES) + 1)
        self._returns: list[float] = []  # since the last drain
        self._versions: list[int] = []  # versions acted with since the last drain, each once
        self._last_version = -1

    def episode(self, ret: float) -> None:
        self.episodes += 1
        self._returns.append(float(ret))

    def segment(self, version: int, lag: int) -> None:
        """A segment acted with weights `version`, `lag` versions behind the newest the actor knew of."""
        self.segments += 1
        self.lag_sum += lag
        self.lag_max = max(self.lag_max, lag)
        if version != self._last_version and version not in self._versions:
            self._versions.append(version)
        self._last_version = version

    def latency(self, seconds: float) -> None:
        """Publish-to-acting time of a newly loaded version."""
        self.latency_counts[latency_bucket(max(0.0, seconds))] += 1

    def report(self, drain: bool = True) -> dict:
        """The counters; `drain` hands over (and forgets) the returns and versions since the last drain, else
        leaves both lists empty."""
        out = {"episodes": self.episodes, "segments": self.segments, "lag_sum": self.lag_sum,
               "lag_max": self.lag_max, "latency_counts": list(self.latency_counts),
               "returns": self._returns if drain else [], "versions_new": self._versions if drain else []}
        if drain:
            self._returns, self._versions = [], []
        return out
