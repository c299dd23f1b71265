"""The actors of one Ray run: start and stop them (placement over nodes, `ami scale`), read their status every
poll, and bring a crashed one back (cluster/recovery.py says how a run survives a crash)."""

from __future__ import annotations

from collections.abc import Callable

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ami.actors.ray_actor import ActorSpec, ActorWorker
from ami.cluster.actor_book import ActorBook
from ami.cluster.config import RunFailed, RuntimeConfig
from ami.cluster.observe import RunObserver
from ami.cluster.recovery import DEAD, RAY_RESTARTS, UNREACHABLE, RestartBudget, alive_nodes, pinned_to_dead


class ActorPool:
    """Actor i's handle and its run() call; what the driver knows of each actor is in `book` (ActorBook)."""

    def __init__(self, spec: Callable[[int], ActorSpec], learner, rt: RuntimeConfig, obs: RunObserver,
                 fresh: bool, restarted: Callable[[str], None], budget: RestartBudget):
        self.spec, self.learner, self.rt, self.obs, self.fresh = spec, learner, rt, obs, fresh
        self.restarted = restarted  # counts a restart of one process kind ('actor')
        self.budget = budget
        self.pinned: dict[int, str] = {}  # actor -> the node it is hard-pinned to
        self.handles: dict[int, object] = {}  # actors that exist (scaled-away ones are killed and dropped)
        self.futures: dict[int, ray.ObjectRef] = {}  # the run() calls of actors still stepping
        self.retiring: set[int] = set()  # told to stop by a scale-down; killed once their run() has returned
        self.book = ActorBook()
        self.crashes: dict[int, int] = {}
        self._raced: dict[int, int] = {}
        self._next_id = 0  # ids are never reused: an id names one actor's seeds, episodes and metrics

    @property
    def live(self) -> int:
        return len(self.futures.keys() - self.retiring)

    @property
    def status(self) -> dict[int, dict]:
        """The last status of each actor that has a process."""
        return self.book.status

    # ----- starting and stopping ----------------------------------------------------------------------------
    def scale_to(self, k: int) -> None:
        """Start actors up to k running ones, or stop the newest beyond k (killed once they have flushed)."""
        live = sorted(self.futures.keys() - self.retiring)
        for i in live[k:]:
            self.handles[i].stop.remote()
            self.retiring.add(i)
        for _ in range(max(0, k - len(live))):
            self._spawn(self._next_id)
            self._next_id += 1

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
        """Every actor steps again (after the driver handed lost steps back to the budget); scaled-away actors
        are no longer among the handles."""
        for i, h in self.handles.items():
            self.futures[i] = h.run.remote(self.fresh)
            self.obs.watch(f"actor-{i}", h)

    def stop(self) -> None:
        """Stop every actor and wait until each has flushed what it stepped."""
        for h in self.handles.values():
            h.stop.remote()
        for i, f in list(self.futures.items()):
            try:
                ray.get(f)
            except DEAD:  # crashed while stopping: what it stored counts (the run ends on the replay's count)
                pass
            self.futures.pop(i)

    # ----- polling ------------------------------------------------------------------------------------------
    def poll(self, timeout_s: float) -> list[float]:
        """Wait up to `timeout_s` for run() calls to end (a crash brings the actor back), then read every
        status; returns the episode returns reported since the last poll."""
        done = []  # scaled-away actors whose run() ended: gone after this poll's status
        if self.futures:
            ready, _ = ray.wait(list(self.futures.values()), num_returns=len(self.futures), timeout=timeout_s)
            for i in [i for i, f in self.futures.items() if f in ready]:
                try:
                    ray.get(self.futures.pop(i))  # raises if the actor failed
                    self.obs.forget(f"actor-{i}")  # done stepping (budget spent, or scaled away)
                except DEAD:
                    if i not in self.retiring:
                        self._crashed(i)
                        continue
                    self.crashes[i] = self.crashes.get(i, 0) + 1  # its unstored steps go back to the budget
                    self.book.crashed(i)
                if i in self.retiring:
                    done.append(i)
        returns = []
        ids = list(self.handles)
        refs = [self.handles[i].status.remote() for i in ids]
        for i, ref in zip(ids, refs, strict=True):
            try:
                st = ray.get(ref, timeout=30)
            except UNREACHABLE:
                continue  # crashed (noticed through its run() call) or still restarting
            returns.extend(self.book.report(i, st))
        for i in done:
            self._retire(i)
        return returns

    def _retire(self, i: int) -> None:
        """Scaled-away actor i has flushed and reported for the last time: kill its process (Ray would keep it,
        and its CPUs, for the rest of the run), forget its handle; its steps stay counted once."""
        self.retiring.discard(i)
        self.book.retire(i)
        self.pinned.pop(i, None)
        self.obs.forget(f"actor-{i}")
        try:
            ray.kill(self.handles.pop(i))
        except Exception:  # already gone
            pass

    def _crashed(self, i: int) -> None:
        """Ray restarts a crashed actor; its run() goes on from the shared budget. What the dead incarnation
        stepped but never stored is given back to the budget once every actor is done."""
        gone = pinned_to_dead(self.pinned.get(i), alive_nodes())  # Ray cannot restart it there
        if gone:
            self._spawn(i)  # a new process for actor i on a live node
        else:
            self.futures[i] = self.handles[i].run.remote(self.fresh)
        had_status = self.book.crashed(i)
        if not had_status and not gone:  # no word since its last crash: a call that raced the restart, no new crash
            self._raced[i] = self._raced.get(i, 0) + 1
            if self._raced[i] > 50:
                raise RunFailed(f"actor {i} does not come back: 50 calls failed since its last crash")
            return
        self._raced[i] = 0
        self.crashes[i] = self.crashes.get(i, 0) + 1
        self.budget.crashed(f"actor {i}")
        self.restarted("actor")
        self.obs.watch(f"actor-{i}", self.handles[i])

    # ----- figures ------------------------------------------------------------------------------------------
    def totals(self) -> list[dict]:
        """Each actor's last status with its crashed incarnations' counters added (scaled-away actors too)."""
        return list(self.book.totals().values())

    def stepped(self) -> int:
        """Env steps every incarnation of every actor reported."""
        return sum(s["env_steps"] for s in self.totals())

    def versions(self) -> dict[int, int]:
        """The weights version each running actor acts with."""
        return {i: self.status[i]["version"] for i in self.futures.keys() - self.retiring if i in self.status}

    def claim_retries(self) -> bool:
        return any(s.get("claim_retries", 0) for s in self.totals())
