"""The figures a Ray run reports (mixed into cluster.ray_driver.RayBackend): policy lag, replay views that survive
a Redis restart, and the backend extras of summary.json."""

from __future__ import annotations

import numpy as np

RAY_KEYS = ("actors", "actor_env_steps", "restarts", "recoveries", "actor_nodes", "learner_node", "learner_device",
            "replay_inserted_transitions", "policy_lag_mean", "policy_lag_max", "segment_lag_mean", "versions_used",
            "broadcast_latency_p50_ms", "broadcast_latency_p90_ms", "updates_per_s", "learner_busy_fraction",
            "actor_paused_s", "env_steps_per_s", "weights_mb", "replay_dropped_transitions", "replay_write_retries",
            "budget_claim_retries")
"""The keys a Ray run's summary.json has beyond every backend's (docs/contracts.md)."""


class RunFigures:
    """Uses RayBackend's status (per actor), carried (crashed incarnations), lstat, lag_samples, replay, restarts."""

    def _lag(self) -> tuple[float, int]:
        """Policy lag (mean, max) sampled at every poll: learner version minus each running actor's version."""
        lag = self.lag_samples
        return (float(np.mean(lag)), int(max(lag))) if lag else (0.0, 0)

    def _segment_lag(self) -> float:
        """Mean over stored segments of (newest version the actor knew of - version that acted)."""
        seg = sum(s["segments"] for s in self.status.values())
        return sum(s["lag_sum"] for s in self.status.values()) / seg if seg else 0.0

    def replay_size(self) -> int:
        try:
            return self.replay.size()
        except Exception:  # redis restarting
            return 0

    def replay_stats(self) -> dict | None:
        try:
            return self.replay.stats()
        except Exception:  # redis down for a moment: the next poll reports
            return None

    def _extras(self, interrupted: bool) -> dict:
        st = [{**s, **{k: s[k] + self.carried.get(i, {}).get(k, 0) for k in ("env_steps", "segments", "lag_sum")},
               "versions_used": sorted(set(s["versions_used"]) | set(self.carried.get(i, {}).get("versions_used", [])))}
              for i, s in self.status.items()]
        actor_steps = {str(i): s["env_steps"] for i, s in zip(self.status, st, strict=True)}
        lat = [x for s in st for x in s["latencies"]]
        lag_mean, lag_max = self._lag()
        inserted = int(self.replay.stats().get("inserted_transitions", 0)) - self.inserted0
        wall = self.lstat["wall_s"]
        return {"interrupted": interrupted, "actors": len(self.status),
                "actor_env_steps": dict(sorted(actor_steps.items())), "restarts": dict(self.restarts),
                "recoveries": self.recoveries,
                "actor_nodes": sorted({s["node_id"] for s in st}), "learner_node": self.lstat["node_id"],
                "learner_device": self.lstat["device"], "replay_inserted_transitions": inserted,
                "policy_lag_mean": lag_mean, "policy_lag_max": lag_max, "segment_lag_mean": self._segment_lag(),
                "versions_used": sorted({v for s in st for v in s["versions_used"]}),
                "broadcast_latency_p50_ms": float(np.percentile(lat, 50) * 1e3) if lat else None,
                "broadcast_latency_p90_ms": float(np.percentile(lat, 90) * 1e3) if lat else None,
                "updates_per_s": self.lstat["updates"] / wall if wall else 0.0,
                "learner_busy_fraction": self.lstat["busy_s"] / wall if wall else 0.0,
                "actor_paused_s": sum(s["paused_s"] for s in st),
                "env_steps_per_s": sum(s["env_steps"] for s in st) / max([s["run_s"] for s in st] or [1.0]),
                "weights_mb": self.lstat.get("weights_mb"),
                "replay_dropped_transitions": sum(s.get("replay_dropped", 0.0) for s in st),
                "replay_write_retries": sum(s.get("replay_retries", 0.0) for s in st),
                "budget_claim_retries": sum(s.get("claim_retries", 0) for s in st)}
