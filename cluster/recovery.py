"""How a Ray run survives a crashed process, what a call to a crashed one raises, and when the run gives up.

- Ray restarts every crashed actor, learner and evaluator process without limit (`RAY_RESTARTS`); the driver
  decides when to stop, by rate (`RestartBudget`): a process may crash `runtime.max_restarts` times within any
  `runtime.restart_window_s` seconds, so a days-long run on spot nodes rides out crashes hours apart while a
  crash loop stops the run with one line (`RunFailed`).
- An actor: the driver notices through the failed run() call, keeps the dead incarnation's counters, calls run()
  again (the new incarnation reads the newest weights first) and asks for its new metrics target
  (cluster/actor_pool.py). An actor pinned to a node that is gone cannot be restarted there (`pinned_to_dead`):
  the driver starts a replacement on a live node. Steps the dead one claimed from the budget but never stored are
  handed back once every actor is done (`RayBackend._top_up`), so the run still stores exactly its step count,
  each step once.
- The learner: the new incarnation publishes nothing until the driver (cluster/learner_link.py) `restore()`s the
  run's last checkpoint (at most one checkpoint interval of updates lost); versions continue above the highest
  ever published (kept in Redis), so a version number is never reused.
- The private redis-server: `Services.supervise()` restarts it on the same port and AOF; writers buffer and
  retry meanwhile.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import ray

from ami.cluster.config import RunFailed

DEAD = (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError)
"""What a call to a crashed actor raises (an actor pinned to a node that died cannot even be rescheduled)."""
UNREACHABLE = (*DEAD, ray.exceptions.GetTimeoutError)

RAY_RESTARTS = -1
"""max_restarts of every process of a run: Ray always restarts it; RestartBudget decides when the run stops."""


def over_budget(crashes: Sequence[float], now: float, max_restarts: int, window_s: float) -> bool:
    """True when more than `max_restarts` of the `crashes` (times, seconds) lie within the last `window_s`
    seconds before `now`: the process restarts too fast to be worth restarting again."""
    return sum(1 for t in crashes if now - t < window_s) > max_restarts


class RestartBudget:
    """The crash times of each process of a run within the window (`clock`: seconds, injected by tests)."""

    def __init__(self, max_restarts: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_restarts, self.window_s, self.clock = max_restarts, window_s, clock
        self._crashes: dict[str, deque[float]] = {}

    def crashed(self, who: str) -> int:
        """Record a crash of process `who` ('actor 3', 'the learner'); returns its crashes within the window.
        Raises RunFailed when they are over the budget."""
        now = self.clock()
        times = self._crashes.setdefault(who, deque())
        times.append(now)
        while times and now - times[0] >= self.window_s:  # older ones can never count again: memory stays bounded
            times.popleft()
        if over_budget(times, now, self.max_restarts, self.window_s):
            raise RunFailed(f"{who} crashed {len(times)} times within {self.window_s:g} s (runtime.max_restarts="
                            f"{self.max_restarts} per runtime.restart_window_s={self.window_s:g}): a crash loop, "
                            "so the run stops; --resume RUN_DIR continues from its last checkpoint")
        return len(times)


class Outage:
    """How long a service (the run's Redis) has not answered, and the lines that tell the user: one warning once
    an outage passes `warn_after_s`, one line when it ends (`clock`: seconds, injected by tests)."""

    def __init__(self, what: str, warn_after_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.what, self.warn_after_s, self.clock = what, warn_after_s, clock
        self.since: float | None = None  # clock() at the first failed look of this outage
        self._warned = False

    @property
    def down_s(self) -> float:
        return 0.0 if self.since is None else self.clock() - self.since

    def update(self, reachable: bool) -> str | None:
        """Record one look; returns a line for stderr when there is news."""
        now = self.clock()
        if reachable:
            was, warned, self.since, self._warned = self.since, self._warned, None, False
            return f"ami: {self.what} answers again after {now - was:.0f} s; the run goes on" if warned else None
        if self.since is None:
            self.since = now
        if not self._warned and now - self.since >= self.warn_after_s:
            self._warned = True
            return (f"ami: warning: {self.what} unreachable for {now - self.since:.0f} s; actors and the learner "
                    "wait for it, and the run goes on once it is back")
        return None


def pinned_to_dead(node_id: str | None, alive: Iterable[str]) -> bool:
    """True when a process pinned (hard node affinity) to `node_id` can never run again: that node is not among
    the `alive` ones. None: not pinned, so Ray restarts it on any node."""
    return node_id is not None and node_id not in set(alive)


def alive_nodes() -> list[str]:
    """Ids of the cluster's alive nodes (`ray.nodes()`, public API)."""
    return [n["NodeID"] for n in ray.nodes() if n["Alive"]]
