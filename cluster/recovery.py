"""How a Ray run survives a crashed process, and what a call to a crashed one raises.

- An actor: Ray restarts it (runtime.max_restarts); the driver notices through the failed run() call, keeps the
  dead incarnation's counters, calls run() again (the new incarnation reads the newest weights first) and asks
  for its new metrics target (cluster/actor_pool.py). Steps the dead one claimed from the budget but never
  stored are handed back once every actor is done (`RayBackend._top_up`), so the run still stores exactly its
  step count, each step once.
- The learner: Ray restarts it; the new incarnation publishes nothing until the driver (cluster/learner_link.py)
  `restore()`s the run's last checkpoint (at most one checkpoint interval of updates lost); versions continue
  above the highest ever published (kept in Redis), so a version number is never reused.
- The private redis-server: `Services.supervise()` restarts it on the same port and AOF; writers buffer and
  retry meanwhile.
"""

from __future__ import annotations

import ray

DEAD = (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError)
"""What a call to a crashed actor raises (an actor pinned to a node that died cannot even be rescheduled)."""
UNREACHABLE = (*DEAD, ray.exceptions.GetTimeoutError)


def dead_for_good(handle) -> bool:
    """True when Ray reports the actor DEAD (restarts exhausted or impossible), not RESTARTING."""
    try:
        from ray._private.state import actors

        return actors(handle._actor_id.hex()).get("State") == "DEAD"
    except Exception:  # internal API unavailable: assume Ray restarts it
        return False
