"""The Ray actor role: an EpisodeRunner (M envs, one torch thread) writing segments to the Redis replay.

Env steps come from a budget shared by every actor of a run (an INCRBY counter next to the replay), claimed a few
vector steps at a time, so the run stops at exactly its step count however many actors there are. Every
`version_check_every` steps the actor asks the learner for its newest (version, ref) without waiting for the
answer; when a newer version shows up it fetches that one object (again without blocking: ray.wait with
fetch_local) and acts with it from the next step on. Every segment carries the version that acted.
The actor also pauses while the learner owes more than `max_update_lag` updates, to keep the replay ratio.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import ray
import redis
import torch

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace, TimedAgent, evaluate
from ami.actors.tally import ActorTally
from ami.agent.agent import Agent
from ami.envs.make import EnvSpec
from ami.learner.learner import LearnerConfig
from ami.learner.pacing import vector_steps_left
from ami.memory.config import ReplayConfig
from ami.memory.core import Segment
from ami.memory.redis_replay import RedisReplay
from ami.memory.redis_shard import RETRYABLE
from ami.memory.run_keys import RunKeys
from ami.telemetry.exporter import ExporterConfig, start_process_metrics


@dataclass(frozen=True)
class ActorSpec:
    """Everything an actor process needs to build its agent, envs and replay writer."""

    env_id: str
    """Gymnasium id."""
    obs_space: object
    """Single-env observation space."""
    action_space: object
    """Single-env action space."""
    agent_cfg: object
    """Resolved AgentConfig."""
    runner: RunnerConfig
    """Segment length and exploration (the user's runner.* keys)."""
    place: RunnerPlace
    """Envs per actor, seed and actor id (its first episode id comes from its incarnation)."""
    replay: ReplayConfig
    """Replay settings (namespace, capacity)."""
    url: str = field(repr=False)
    """Redis URL of the replay (never logged)."""
    run_namespace: str
    """Namespace of the run's counters in Redis (memory.run_keys: the shared env-step budget, incarnations)."""
    steps: int
    """Env steps of the whole run."""
    learner: LearnerConfig
    """The learner's pace: random actions while the run's step counter is below its warm-up (fresh runs only), and
    the updates it owes (for pausing when the learner falls behind)."""
    max_update_lag: int
    """Pause while the learner owes more updates than this (0: never)."""
    version_check_every: int
    """Vector steps between version checks."""
    claim_steps: int
    """Vector steps claimed from the budget at once."""
    metrics_bind: str = "0.0.0.0"
    """Interface of the actor's /metrics endpoint (127.0.0.1 when ami started Ray on this machine)."""
    play: EnvSpec | None = None
    """The env the actor steps (env_id's with the run's kwargs and action repeat, or run.explore_env_id's);
    None: env_id as registered. Metrics keep env_id."""


CLAIM_RETRY_MIN_S, CLAIM_RETRY_MAX_S = 0.1, 2.0
"""A budget claim Redis did not answer is retried after the first, doubling up to the second, without end."""

PAUSE_MIN_S, PAUSE_MAX_S = 0.005, 0.08
"""An actor ahead of the learner sleeps between looks at its progress, doubling from the first to the second."""


def to_torch(weights: dict) -> dict:
    with warnings.catch_warnings():  # arrays from the object store are read-only; load_state_dict copies them
        warnings.simplefilter("ignore", UserWarning)
        return {k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()}


@ray.remote(max_concurrency=3)
class ActorWorker:
    """Steps envs with the newest weights it has seen, until the run's budget is spent or stop() is called."""

    def __init__(self, spec: ActorSpec, learner):
        torch.set_num_threads(1)
        torch.manual_seed(spec.place.seed)
        from ami.envs import register_envs

        register_envs()
        self.spec, self.learner = spec, learner
        self.agent = Agent(spec.obs_space, spec.action_space, spec.agent_cfg)
        self.replay = RedisReplay(spec.replay, spec.url)
        self.keys = RunKeys(spec.url, spec.run_namespace, spec.replay.socket_timeout_s)
        self.pm = start_process_metrics("actor", spec.env_id, spec.place.actor_id,
                                        ExporterConfig(bind_host=spec.metrics_bind))
        # each incarnation (first start, Ray restart, resumed run) numbers its episodes in its own 2^32 block
        place = dataclasses.replace(spec.place, first_episode=self.keys.new_incarnation() << 32)
        self.runner = EpisodeRunner(spec.play or spec.env_id, TimedAgent(self.agent, self.pm.actor),
                                    spec.runner, self._sink, place)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending = None  # in-flight latest() call
        self._fetch: dict | None = None  # newer version being fetched
        self.known = {"version": 0, "updates": 0}
        self.claimed_total = 0
        self.claim_retries = 0  # budget claims retried after a connection error or timeout
        self.tally = ActorTally()  # what status() reports: fixed-size sums and drained lists (actors/tally.py)
        self.paused_s = 0.0
        self.t_run = 0.0
        self._t_replay = 0.0
        self.replay_stats: dict = {}

    def metrics_target(self) -> dict:
        """Where this process serves /metrics (host, port, labels), for the driver's discovery."""
        return self.pm.target.to_dict()

    # ----- weights ------------------------------------------------------------------------------------------
    def _check(self, block: bool = False) -> None:
        try:
            self._check_weights(block)
        except OSError:
            # this node's raylet is gone ("Failed to read data from the socket"): the actor goes down with its
            # node, as a crash, so Ray restarts it elsewhere and the driver's recovery takes over; raised out of
            # run() it would read as the run's own error and stop the whole run (seen when a node was removed)
            os._exit(1)

    def _check_weights(self, block: bool) -> None:
        if self._pending is None:
            self._pending = self.learner.latest.remote()
        ready, _ = ray.wait([self._pending], timeout=None if block else 0)
        if ready:
            try:
                info = ray.get(self._pending)
            except ray.exceptions.RayError:  # the learner died; Ray restarts it, ask again next time
                self._pending = None
                return
            self._pending = None
            if info["version"] < int(self.known["version"]):  # a restarted learner not yet restored: ignore
                return
            self.known = info
            if info["version"] > self.runner.policy_version and (
                    self._fetch is None or info["version"] > self._fetch["version"]):
                self._fetch = info
        if self._fetch is not None:
            ref = self._fetch["ref"]
            if ray.wait([ref], timeout=None if block else 0, fetch_local=True)[0]:
                try:
                    weights = ray.get(ref)
                except ray.exceptions.RayError:  # its owner (a dead learner) is gone: wait for the next version
                    self._fetch = None
                    return
                self.agent.load_weights(to_torch(weights))
                self.runner.policy_version = self._fetch["version"]
                latency = time.time() - self._fetch["published_at"]
                with self._lock:
                    self.tally.latency(latency)
                self._fetch = None
                self.pm.actor.weights(self.runner.policy_version, int(self.known["version"]), latency)
                return
        self.pm.actor.weights(self.runner.policy_version, int(self.known["version"]))

    def _sink(self, segment: Segment) -> None:
        self.replay.add(segment)
        self.pm.actor.segment()
        lag = max(0, int(self.known["version"]) - segment.meta.policy_version)
        with self._lock:
            self.tally.segment(segment.meta.policy_version, lag)

    # ----- stepping -----------------------------------------------------------------------------------------
    def _owed(self) -> int:
        return self.spec.learner.owed(self.claimed_total) - int(self.known["updates"])

    def _claim(self) -> tuple[int, int]:
        """(first step index, vector steps granted) from the shared budget; (_, 0) when stopped meanwhile."""
        m = self.spec.place.num_envs
        want = self.spec.claim_steps * m
        t0 = time.perf_counter()
        retried, nap = False, CLAIM_RETRY_MIN_S
        while True:
            try:
                total = self.keys.claim(want)
                break
            except RETRYABLE:
                # Redis restarting or down, for however long (the run goes on once it is back; the driver reports
                # the outage). An INCRBY that timed out may have been applied: those steps are never stepped by
                # anyone, and the driver hands them back (with a dead actor's) once every actor is done
                self.claim_retries, retried = self.claim_retries + 1, True
                if self._stop.wait(nap):
                    return self.spec.steps, 0
                nap = min(2 * nap, CLAIM_RETRY_MAX_S)
        if retried:
            self.pm.actor.budget_wait(time.perf_counter() - t0)
        start = total - want
        self.claimed_total = min(total, self.spec.steps)
        return start, min(want // m, vector_steps_left(start, self.spec.steps, m))

    def run(self, fresh: bool = True) -> dict:
        """Step until the budget is spent or stop(); flush everything; return the final status."""
        s, m = self.spec, self.spec.place.num_envs
        t0 = time.perf_counter()
        try:
            self._check(block=True)
            k, nap = 0, PAUSE_MIN_S
            while not self._stop.is_set():
                if (s.max_update_lag and not s.learner.warming_up(self.claimed_total)
                        and self._owed() > s.max_update_lag):
                    tp = time.perf_counter()
                    time.sleep(nap)
                    # each look is a call into the learner's process: back off while it stays behind, so a
                    # paused actor does not take the learner's CPU with hundreds of calls a second
                    nap = min(2 * nap, PAUSE_MAX_S)
                    self._check(block=True)
                    self.paused_s += time.perf_counter() - tp
                    self.pm.actor.paused(time.perf_counter() - tp)
                    continue
                nap = PAUSE_MIN_S
                start, granted = self._claim()
                if granted == 0:
                    break
                for i in range(granted):
                    if k % s.version_check_every == 0:
                        self._check()
                    k += 1
                    self.runner.step(1, random=fresh and s.learner.warming_up(start + i * m))
                    self.pm.actor.step(m)
                    if self.runner.episodes:
                        self.pm.actor.episodes(self.runner.episodes)
                        with self._lock:
                            for ret, _ in self.runner.episodes:
                                self.tally.episode(ret)
                        self.runner.episodes.clear()
                    self._observe_replay()
            self.runner.flush_all()
            self.replay.flush(60.0)
            self._observe_replay(0.0)
        finally:
            self.t_run += time.perf_counter() - t0
        return self.status(drain=False)

    def _observe_replay(self, every_s: float = 2.0) -> None:
        now = time.perf_counter()
        if now - self._t_replay >= every_s:
            self._t_replay = now
            try:
                self.replay_stats = self.replay.stats()
            except redis.exceptions.RedisError:
                return
            self.pm.replay.observe_client(self.replay_stats)

    def stop(self) -> None:
        self._stop.set()

    def status(self, drain: bool = True) -> dict:
        """Counters, the same size however long the run (actors/tally.py); `drain` hands over (and forgets) the
        episode returns and the versions acted with since the last call."""
        with self._lock:
            return {"actor_id": self.spec.place.actor_id, "env_steps": self.runner.env_steps,
                    "version": self.runner.policy_version, **self.tally.report(drain),
                    "paused_s": self.paused_s, "run_s": self.t_run,
                    "node_id": ray.get_runtime_context().get_node_id(),
                    "replay_dropped": self.replay_stats.get("dropped_transitions", 0.0),
                    "replay_retries": self.replay_stats.get("write_retries", 0.0),
                    "claim_retries": self.claim_retries}


@ray.remote(max_concurrency=1)
class EvaluatorActor:
    """The evaluation role: greedy episodes with the weights it is handed (a ref resolved by Ray)."""

    def __init__(self, env: str | EnvSpec, obs_space, action_space, agent_cfg, episodes: int):
        torch.set_num_threads(1)
        self.env, self.episodes = env, episodes
        self.agent = Agent(obs_space, action_space, agent_cfg)

    def evaluate(self, weights: dict, version: int, seed: int) -> dict:
        self.agent.load_weights(to_torch(weights))
        return {**evaluate(self.env, self.agent, self.episodes, seed), "eval_weights_version": version}
