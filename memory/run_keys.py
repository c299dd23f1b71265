"""The run-wide counters of a Ray run, kept in Redis next to its replay, on their own client.

- budget: env steps claimed so far by every actor together (INCRBY); the run stops at exactly its step count.
- version: the highest weights version ever published, so a restarted learner goes on above it.
- incarnations: actor processes started so far (first starts, Ray restarts, resumed runs); each numbers its
  episodes in its own block.
"""

from __future__ import annotations

import time

import redis

from ami.memory.redis_shard import RETRYABLE


class RunKeys:
    """One run's counters under `<namespace>:budget`, `<namespace>:version`, `<namespace>:budget:incarnations`."""

    def __init__(self, url: str, namespace: str, socket_timeout_s: float):
        # a hung Redis must raise (and be retried by the caller, and show in the metrics), not stall in silence
        self.client = redis.Redis.from_url(url, socket_timeout=socket_timeout_s,
                                           socket_connect_timeout=socket_timeout_s)
        self.budget_key = f"{namespace}:budget"
        self.version_key = f"{namespace}:version"
        self.incarnations_key = f"{self.budget_key}:incarnations"

    def set_budget(self, claimed: int) -> None:
        """Env steps claimed so far (the driver: at start, and when it hands lost steps back)."""
        self.client.set(self.budget_key, int(claimed))

    def claim(self, steps: int) -> int:
        """Claim `steps` more env steps; the total claimed after this claim."""
        return int(self.client.incrby(self.budget_key, int(steps)))

    def set_version(self, version: int) -> None:
        self.client.set(self.version_key, int(version))

    def version(self) -> int:
        """The highest version ever published (0 before the first)."""
        return int(self.client.get(self.version_key) or 0)

    def new_incarnation(self, nap_s: float = 0.1, max_nap_s: float = 2.0) -> int:
        """The number of this actor process among every one the run started (1, 2, ...). Waits out a Redis outage
        of any length, retrying with backoff: an actor that starts meanwhile (a Ray restart, a resumed run) must not
        fail its creation, which Ray would retry into the same failure until the driver gives the actor up and
        stops the run. An INCR applied before its reply was lost skips a number; only distinct numbers matter."""
        while True:
            try:
                return int(self.client.incr(self.incarnations_key))
            except RETRYABLE:
                time.sleep(nap_s)
                nap_s = min(2 * nap_s, max_nap_s)

    def reachable(self) -> bool:
        """Redis answers PING (the driver asks every poll, to report an outage)."""
        try:
            return bool(self.client.ping())
        except redis.exceptions.RedisError:
            return False

    def close(self) -> None:
        self.client.close()
