"""The actors of one Ray run: start and stop them (placement over nodes, `ami scale`), read their status every
poll, and bring a crashed one back (cluster/recovery.py says how a run survives a crash)."""

from __future__ import annotations

from collections.abc import Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ami.actors.ray_actor import ActorSpec, ActorWorker
from ami.cluster.config import RunFailed, RuntimeConfig
from ami.cluster.observe import RunObserver
from ami.cluster.recovery import DEAD, RAY_RESTARTS, UNREACHABLE, RestartBudget, alive_nodes, pinned_to_dead

SUMMED = ("env_steps", "segments", "lag_sum")
"""Status counters that add up over an actor's incarnations (a crashed one's are carried)."""


class ActorPool:
    """Actor i's handle, its run() call and its last status; what crashed incarnations had counted."""

    def __init__(self, spec: Callable[[int], ActorSpec], learner, rt: RuntimeConfig, obs: RunObserver,
                 fresh: bool, restarted: Callable[[str], None], budget: RestartBudget):
        self.spec, self.learner, self.rt, self.obs, self.fresh = spec, learner, rt, obs, fresh
        self.restarted = restarted  # counts a restart of one process kind ('actor')
        self.budget = budget
        self.pinned: dict[int, str] = {}  # actor -> the node it is hard-pinned to
        self.handles: dict[int, object] = {}
        self.futures: dict[int, ray.ObjectRef] = {}  # the run() calls of actors still stepping
        self.status: dict[int, dict] = {}
        self.carried: dict[int, dict] = {}  # counters of actor incarnations that crashed
        self.crashes: dict[int, int] = {}
        self._raced: dict[int, int] = {}

    @property
    def live(self) -> int:
        return len(self.futures)

    # ----- starting and stopping ----------------------------------------------------------------------------
    def scale_to(self, k: int) -> None:
        """Start actors up to k running ones, or stop the newest beyond k."""
        live = sorted(self.futures)
        for i in live[k:]:
            self.handles[i].stop.remote()
        next_id = max(self.handles, default=-1) + 1
        for i in range(next_id, next_id + max(0, k - len(live))):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        """Start actor i (also: a replacement for one whose node is gone) and its run()."""
        h = ActorWorker.options(num_cpus=self.rt.actor_cpus, scheduling_strategy=self._place(i),
                                max_restarts=RAY_RESTARTS).remote(self.spec(i), self.learner)
        self.handles[i] = h
        self.futures[i] = h.run.remote(self.fresh)
        self.obs.watch(f"actor-{i}", h)

    def _place(self, i: int):
        """Actor i goes to alive node i mod N. Ray's own SPREAD is best effort and packed both actors of a
        2-node test cluster onto one node now and then. Actors that reserve CPUs may go elsewhere (soft) when
        their node is full; zero-CPU actors always fit, so they are pinned (an actor whose node died is replaced
        by a new one on a live node)."""
        self.pinned.pop(i, None)
        nodes = sorted(alive_nodes())
        if len(nodes) < 2:
            return "SPREAD"
        soft = self.rt.actor_cpus > 0
        if not soft:
            self.pinned[i] = nodes[i % len(nodes)]
        return NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=soft)

    def run_again(self) -> None:
        """Every actor steps again (after the driver handed lost steps back to the budget)."""
        for i, h in self.handles.items():
            self.futures[i] = h.run.remote(self.fresh)
            self.obs.watch(f"actor-{i}", h)

    def stop(self) -> None:
        """Stop every actor and wait until each has flushed what it stepped."""
        for h in self.handles.values():
            h.stop.remote()
        for i, f in list(self.futures.items()):
            ray.get(f)
            self.futures.pop(i)

    # ----- polling ------------------------------------------------------------------------------------------
    def poll(self, timeout_s: float) -> list[float]:
        """Wait up to `timeout_s` for run() calls to end (a crash brings the actor back), then read every
        status; returns the episode returns reported since the last poll."""
        if self.futures:
            ready, _ = ray.wait(list(self.futures.values()), num_returns=len(self.futures), timeout=timeout_s)
            for i in [i for i, f in self.futures.items() if f in ready]:
                try:
                    ray.get(self.futures.pop(i))  # raises if the actor failed
                    self.obs.forget(f"actor-{i}")  # done stepping (budget spent, or scaled away)
                except DEAD:
                    self._crashed(i)
        returns = []
        ids = list(self.handles)
        refs = [self.handles[i].status.remote() for i in ids]
        for i, ref in zip(ids, refs, strict=True):
            try:
                st = ray.get(ref, timeout=30)
            except UNREACHABLE:
                continue  # crashed (noticed through its run() call) or still restarting
            returns.extend(st["returns"])
            self.status[i] = st
        return returns

    def _crashed(self, i: int) -> None:
        """Ray restarts a crashed actor; its run() goes on from the shared budget. What the dead incarnation
        stepped but never stored is given back to the budget once every actor is done."""
        gone = pinned_to_dead(self.pinned.get(i), alive_nodes())  # Ray cannot restart it there
        if gone:
            self._spawn(i)  # a new process for actor i on a live node
        else:
            self.futures[i] = self.handles[i].run.remote(self.fresh)
        last = self.status.pop(i, None)
        if last is None and not gone:  # no word since its last crash: a call that raced the restart, no new crash
            self._raced[i] = self._raced.get(i, 0) + 1
            if self._raced[i] > 50:
                raise RunFailed(f"actor {i} does not come back: 50 calls failed since its last crash")
            return
        self._raced[i] = 0
        self.crashes[i] = self.crashes.get(i, 0) + 1
        self.budget.crashed(f"actor {i}")
        if last is not None:
            c = self.carried.setdefault(i, {**dict.fromkeys(SUMMED, 0), "versions_used": []})
            for k in SUMMED:
                c[k] += last[k]
            c["versions_used"] = sorted(set(c["versions_used"]) | set(last["versions_used"]))
        self.restarted("actor")
        self.obs.watch(f"actor-{i}", self.handles[i])

    # ----- figures ------------------------------------------------------------------------------------------
    def totals(self) -> list[dict]:
        """Each actor's last status with its crashed incarnations' counters added."""
        out = []
        for i, s in self.status.items():
            c = self.carried.get(i, {})
            out.append({**s, **{k: s[k] + c.get(k, 0) for k in SUMMED},
                        "versions_used": sorted(set(s["versions_used"]) | set(c.get("versions_used", [])))})
        return out

    def stepped(self) -> int:
        """Env steps every incarnation of every actor reported."""
        return sum(s["env_steps"] for s in self.totals())

    def versions(self) -> dict[int, int]:
        """The weights version each running actor acts with."""
        return {i: self.status[i]["version"] for i in self.futures if i in self.status}

    def claim_retries(self) -> bool:
        return any(s.get("claim_retries", 0) for s in self.status.values())
