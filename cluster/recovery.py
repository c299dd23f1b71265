"""How a Ray run survives a crashed process (mixed into cluster.ray_driver.RayBackend).

- An actor: Ray restarts it (runtime.max_restarts); the driver notices through the failed run() call, keeps the
  dead incarnation's counters, calls run() again (the new incarnation reads the newest weights first) and asks
  for its new metrics target. Steps the dead one claimed from the budget but never stored are handed back once
  every actor is done (`_top_up`), so the run still stores exactly its step count, each step once.
- The learner: Ray restarts it; the new incarnation publishes nothing until the driver `restore()`s the run's
  last checkpoint (at most one checkpoint interval of updates lost); versions continue above the highest ever
  published (kept in Redis), so a version number is never reused.
- The private redis-server: `Services.supervise()` restarts it on the same port and AOF; writers buffer and
  retry meanwhile.
"""

from __future__ import annotations

import ray

DEAD = (ray.exceptions.RayActorError, ray.exceptions.ActorUnschedulableError)
"""What a call to a crashed actor raises (an actor pinned to a node that died cannot even be rescheduled)."""
UNREACHABLE = (*DEAD, ray.exceptions.GetTimeoutError)


class Recovery:
    """Crash handling of RayBackend; uses its cfg, run, book, handles, futures, status, learner, replay, keys, obs."""

    def _restarted(self, process: str) -> None:
        self.restarts[process] += 1
        self.obs.driver.restarted(process)

    def _actor_crashed(self, i: int) -> None:
        """Ray restarts a crashed actor (max_restarts); its run() goes on from the shared budget. What the dead
        incarnation stepped but never stored is given back to the budget once every actor is done (_top_up)."""
        gone = _dead_for_good(self.handles[i])  # e.g. pinned to a node that died: Ray cannot restart it there
        if gone:
            self._spawn(i)  # a new process for actor i on a live node
        else:
            self.futures[i] = self.handles[i].run.remote(self.fresh)
        last = self.status.pop(i, None)
        if last is None and not gone:  # no word since its last crash: a call that raced the restart, no new crash
            self.raced[i] = self.raced.get(i, 0) + 1
            if self.raced[i] > 50:
                raise RuntimeError(f"actor {i} does not come back")
            return
        self.raced[i] = 0
        n = self.actor_restarts[i] = self.actor_restarts.get(i, 0) + 1
        if n > self.cfg.runtime.max_restarts:
            raise RuntimeError(f"actor {i} crashed {n} times")
        if last is not None:
            c = self.carried.setdefault(i, {"env_steps": 0, "segments": 0, "lag_sum": 0, "versions_used": []})
            for k in ("env_steps", "segments", "lag_sum"):
                c[k] += last[k]
            c["versions_used"] = sorted(set(c["versions_used"]) | set(last["versions_used"]))
        self._restarted("actor")
        self.obs.watch(f"actor-{i}", self.handles[i])

    def _ask_learner(self, method: str, *args):
        """learner.<method>(*args), or None when the learner crashed meanwhile (the next poll sees to it)."""
        try:
            return ray.get(getattr(self.learner, method).remote(*args), timeout=120)
        except UNREACHABLE:
            return None

    def _poll_learner(self) -> None:
        try:
            st = ray.get(self.learner.status.remote(), timeout=30)
        except UNREACHABLE:
            if _dead_for_good(self.learner):
                raise RuntimeError(f"the learner crashed more than runtime.max_restarts="
                                   f"{self.cfg.runtime.max_restarts} times") from None
            if self.learner_up:  # crashed: Ray restarts it; restored from the last checkpoint when it answers
                self.learner_up = False
                self.obs.forget("learner")
            return
        if st["needs_restore"]:
            ckpt = self.run.latest_checkpoint.read_bytes() if self.run.latest_checkpoint.exists() else self.ckpt0
            before = self.lstat.get("updates", 0)
            # the learner paces on what the replay holds: the book's count lags (an actor that crashed before
            # its first status), and a learner that counts fewer steps than the actors claimed never catches
            # up with actors paused on it
            steps = self._stored()
            st = ray.get(self.learner.restore.remote(ckpt, steps))
            self.recoveries.append({"process": "learner", "updates_before": before, "updates_after": st["updates"],
                                    "version_after": st["version"], "at_env_steps": steps})
            ray.get(self.learner.start.remote())
            self._restarted("learner")
            self.obs.watch("learner", self.learner)
        self.learner_up = True
        self.lstat = st
        if st["error"]:
            raise RuntimeError(f"learner failed:\n{st['error']}")

    def _stored(self) -> int:
        """Env steps actually in the replay for this run (resumed runs: plus the steps before)."""
        return self.book.resumed_at + int(self.replay.stats().get("inserted_transitions", 0)) - self.inserted0

    def _top_up(self) -> bool:
        """Every actor is done: when faults lost claimed-but-unstored steps (a dead actor's buffer, the last second
        of a crashed Redis, a budget claim applied but retried after a timeout), hand them back to the budget and
        run the actors again; True when it did."""
        faults = self.actor_restarts or self.restarts["redis"] or any(
            s.get("claim_retries", 0) for s in self.status.values())
        stored = self._stored()
        if not faults or self.cfg.run.steps <= stored or stored == self.topped_up_at:  # (last: no progress)
            return False
        self.topped_up_at = stored
        self.keys.set_budget(stored)
        for i, h in self.handles.items():
            self.futures[i] = h.run.remote(self.fresh)
            self.obs.watch(f"actor-{i}", h)
        return True


def _dead_for_good(handle) -> bool:
    """True when Ray reports the actor DEAD (restarts exhausted or impossible), not RESTARTING."""
    try:
        from ray._private.state import actors

        return actors(handle._actor_id.hex()).get("State") == "DEAD"
    except Exception:  # internal API unavailable: assume Ray restarts it
        return False
