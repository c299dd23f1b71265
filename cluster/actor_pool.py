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


def reserved_cpus(rt: RuntimeConfig, attached: bool) -> float:
    """CPUs each actor reserves: runtime.actor_cpus; its default (-1) is one on a cluster the run attached to
    (`attached`: shared or autoscaled, so the scheduler must see what actors need) and none on a Ray instance
    that ami started for the run (any --actors fits, as many as the user asks for)."""
    if rt.actor_cpus >= 0:
        return rt.actor_cpus
    return 1.0 if attached else 0.0


class ActorPool:
    """Actor i's handle and its run() call; what the driver knows of each actor is in `book` (ActorBook)."""

    def __init__(self, spec: Callable[[int], ActorSpec], learner, rt: RuntimeConfig, obs: RunObserver,
                 fresh: bool, restarted: Callable[[str], None], budget: RestartBudget, cpus: float):
        self.spec, self.learner, self.rt, self.obs, self.fresh = spec, learner, rt, obs, fresh
        self.cpus = cpus  # CPUs each actor reserves (reserved_cpus)
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
        self._first: dict[int, ray.ObjectRef] = {}  # the first status() call of each actor not placed yet
        self._back: dict[int, ray.ObjectRef] = {}  # restarted actors: the status() call their run() waits for
        self.spent = False  # an actor's run() ended with the budget spent: pending actors have nothing left to do

    @property
    def live(self) -> int:
        """Actors with a run() in flight (or restarting, to get one) that were not scaled away, pending ones
        included."""
        return len(self._running())

    def _running(self) -> set[int]:
        return (self.futures.keys() | self._back.keys()) - self.retiring

    @property
    def pending(self) -> int:
        """Actors whose process has not started yet: on a cluster with no node that has the CPUs they reserve
        they wait until an autoscaler (or a person) adds one (and one starting during a Redis outage waits for
        Redis)."""
        return len(self._first)

    @property
    def status(self) -> dict[int, dict]:
        """The last status of each actor that has a process."""
        return self.book.status

    # ----- starting and stopping ----------------------------------------------------------------------------
    def scale_to(self, k: int) -> None:
        """Start actors up to k running ones, or stop the newest beyond k (killed once they have flushed; one that
        never got a node at once)."""
        live = sorted(self._running())
        for i in live[k:]:
            if self._waits_for_a_node(i) or i in self._back:
                self._drop(i)
                continue
            self.handles[i].stop.remote()
            self.retiring.add(i)
        for _ in range(max(0, k - len(live))):
            self._spawn(self._next_id)
            self._next_id += 1

    def _spawn(self, i: int) -> None:
        """Start actor i (also: a replacement for one whose node is gone) and its run()."""
        h = ActorWorker.options(num_cpus=self.cpus, scheduling_strategy=self._place(i),
                                max_restarts=RAY_RESTARTS).remote(self.spec(i), self.learner)
        self.handles[i] = h
        self.futures[i] = h.run.remote(self.fresh)
        self._first[i] = h.status.remote(False)  # answers once the process exists (drains nothing)
        self.obs.watch(f"actor-{i}", h)

    def _place(self, i: int):
        """Zero-CPU actors always fit, so actor i is pinned to alive node i mod N (Ray's own SPREAD is best effort
        and packed both actors of a 2-node test cluster onto one node now and then; an actor whose node died is
        replaced by a new one on a live node). Actors that reserve CPUs are SPREAD: Ray puts each only on a node
        with those CPUs free (never a 0-CPU head), and one that fits nowhere pends, the demand an autoscaler
        adds nodes for."""
        self.pinned.pop(i, None)
        nodes = sorted(alive_nodes())
        if self.cpus > 0 or len(nodes) < 2:
            return "SPREAD"
        self.pinned[i] = nodes[i % len(nodes)]
        return NodeAffinitySchedulingStrategy(self.pinned[i], soft=False)

    def _placed_now(self) -> None:
        """Mark the actors whose first status() answered (or failed: a crash is then seen through run())."""
        if self._first:
            ready, _ = ray.wait(list(self._first.values()), num_returns=len(self._first), timeout=0)
            for i in [i for i, ref in self._first.items() if ref in ready]:
                del self._first[i]

    def _waits_for_a_node(self, i: int) -> bool:
        """Actor i reserves CPUs and has no process yet. (An actor that reserves none always gets one: it is only
        starting, e.g. a replacement for one whose node died, so it is left to run and find the budget spent.)"""
        self._placed_now()
        return self.cpus > 0 and i in self._first

    def _drop_pending(self) -> None:
        """Kill the actors that reserve CPUs and still have no process (a spent budget, or the run stops); a 0-CPU
        actor always gets one and is left to start."""
        self._placed_now()
        for i in list(self._first) if self.cpus > 0 else []:
            self._drop(i)

    def _drop(self, i: int) -> None:
        """Actor i never got a process (scaled away, or the budget is spent), or is restarting after a crash and
        is scaled away: kill it so that its CPUs are no longer asked for. It has stepped nothing since it started:
        its first status() answers as soon as its process is up, while its run() must still build its envs and
        fetch weights before it claims a step."""
        self._first.pop(i, None)
        self._back.pop(i, None)
        self.futures.pop(i, None)
        self._retire(i)

    def run_again(self) -> None:
        """Every actor steps again (after the driver handed lost steps back to the budget); scaled-away actors
        are no longer among the handles."""
        for i, h in self.handles.items():
            self.futures[i] = h.run.remote(self.fresh)
            self.obs.watch(f"actor-{i}", h)

    def stop(self) -> None:
        """Stop every actor and wait until each has flushed what it stepped (one still pending is killed)."""
        self._drop_pending()
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
        returns = []
        waited = [*self.futures.values(), *self._back.values()]
        if waited:
            ready, _ = ray.wait(waited, num_returns=len(waited), timeout=timeout_s)
            returns.extend(self._came_back(ready))
            for i in [i for i, f in self.futures.items() if f in ready]:
                try:
                    ray.get(self.futures.pop(i))  # raises if the actor failed
                    self.obs.forget(f"actor-{i}")  # done stepping (budget spent, or scaled away)
                    self.spent = self.spent or i not in self.retiring
                except DEAD:
                    if i not in self.retiring:
                        self._crashed(i)
                        continue
                    self.crashes[i] = self.crashes.get(i, 0) + 1  # its unstored steps go back to the budget
                    self.book.crashed(i)
                if i in self.retiring:
                    done.append(i)
        if self.spent:
            self._drop_pending()
        else:
            self._placed_now()
        # (a pending or restarting actor would hold the poll for up to 30 s)
        ids = [i for i in self.handles if i not in self._first and i not in self._back]
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
            self._back[i] = self.handles[i].status.remote()  # run() again once it answers (_came_back)
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

    def _came_back(self, ready: list) -> list[float]:
        """Restarted actors whose status() answered (see `ready`) get their run() again; returns the episode
        returns they reported. A run() sent at once could reach the dead incarnation and fail only after a status()
        of the new one had answered, and count as a second crash; sent after that answer, its failure is one."""
        returns = []
        for i in [i for i, ref in self._back.items() if ref in ready]:
            try:
                st = ray.get(self._back.pop(i))
            except UNREACHABLE:
                self._crashed(i)  # not back yet (no word since the crash: no new crash), or its node is gone
                continue
            returns.extend(self.book.report(i, st))
            self.futures[i] = self.handles[i].run.remote(self.fresh)
        return returns

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
