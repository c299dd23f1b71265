"""The figures a Ray run adds to summary.json (RAY_KEYS), from its actors, its learner and its replay."""

from __future__ import annotations

from ami.actors.tally import latency_percentile
from ami.cluster.actor_pool import ActorPool
from ami.cluster.learner_link import LearnerLink

RAY_KEYS = ("actors", "actor_env_steps", "restarts", "recoveries", "actor_nodes", "learner_node", "learner_device",
            "replay_inserted_transitions", "policy_lag_mean", "policy_lag_max", "segment_lag_mean", "versions_used",
            "broadcast_latency_p50_ms", "broadcast_latency_p90_ms", "updates_per_s", "learner_busy_fraction",
            "actor_paused_s", "env_steps_per_s", "weights_mb", "replay_dropped_transitions", "replay_write_retries",
            "budget_claim_retries")
"""The keys a Ray run's summary.json has beyond every backend's (docs/contracts.md)."""


class Lag:
    """Policy lag, sampled at every poll: learner version minus each running actor's (a running mean and max,
    so a long run keeps three numbers, not every sample)."""

    def __init__(self):
        self.total, self.n, self.max = 0, 0, 0

    def add(self, learner_version: int, actor_versions) -> None:
        for v in actor_versions:
            d = max(0, learner_version - v)
            self.total, self.n, self.max = self.total + d, self.n + 1, max(self.max, d)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0


def ray_extras(pool: ActorPool, learner: LearnerLink, lag: Lag, restarts: dict[str, int],
               inserted: int) -> dict:
    """summary.json's RAY_KEYS (`inserted`: transitions the replay received during this invocation)."""
    st = pool.totals()
    seg = sum(s["segments"] for s in st)
    lat = [sum(c) for c in zip(*(s["latency_counts"] for s in st), strict=True)]
    p50, p90 = latency_percentile(lat, 50), latency_percentile(lat, 90)
    ls, wall = learner.status, learner.status["wall_s"]
    return {"actors": len(st), "actor_env_steps": {str(i): s["env_steps"] for i, s in pool.book.totals().items()},
           "restarts": dict(restarts), "recoveries": learner.recoveries,
           "actor_nodes": sorted({s["node_id"] for s in st}), "learner_node": ls["node_id"],
           "learner_device": ls["device"], "replay_inserted_transitions": inserted,
           "policy_lag_mean": lag.mean, "policy_lag_max": lag.max,
           "segment_lag_mean": sum(s["lag_sum"] for s in st) / seg if seg else 0.0,
           "versions_used": list(pool.book.versions),
           "broadcast_latency_p50_ms": None if p50 is None else p50 * 1e3,
           "broadcast_latency_p90_ms": None if p90 is None else p90 * 1e3,
           "updates_per_s": ls["updates"] / wall if wall else 0.0,
           "learner_busy_fraction": ls["busy_s"] / wall if wall else 0.0,
           "actor_paused_s": sum(s["paused_s"] for s in st),
           "env_steps_per_s": sum(s["env_steps"] for s in st) / max([s["run_s"] for s in st] or [1.0]),
           "weights_mb": ls.get("weights_mb"),
           "replay_dropped_transitions": sum(s.get("replay_dropped", 0.0) for s in st),
           "replay_write_retries": sum(s.get("replay_retries", 0.0) for s in st),
           "budget_claim_retries": sum(s.get("claim_retries", 0) for s in st)}
