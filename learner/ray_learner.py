"""The learner as a Ray actor: learner.Learner on a training thread, fed by the Redis replay.

The training thread runs updates while `due(env_steps)` says the replay ratio allows them, where env_steps is
the run's counter at start plus the transitions the replay received since. Every `snapshot_every` updates the
weights (a dict of numpy arrays) are put ONCE into Ray's object store; `latest()` answers with the version and
that reference from another thread of this actor, so actors never wait on the busy loop. Checkpoints travel as
bytes (the driver writes them into the run directory), so the learner may live on another node.
"""

from __future__ import annotations

import threading
import time
import traceback
import warnings
from collections.abc import Callable

import ray
import torch

from ami.agent.agent import Agent
from ami.agent.pretrain import load_pretrained, pretrained_from_bytes
from ami.learner.learner import Learner, LearnerConfig, checkpoint_state
from ami.memory.config import ReplayConfig
from ami.memory.redis_replay import RedisReplay
from ami.memory.redis_shard import RETRYABLE
from ami.memory.run_keys import RunKeys
from ami.telemetry.exporter import ExporterConfig, start_process_metrics


def weights_numpy(agent: Agent) -> dict:
    """The acting weights as numpy arrays (zero-copy readable from Ray's object store)."""
    return {k: v.numpy() for k, v in agent.weights().items()}


def train_while_owed(train_once: Callable[[], int], deadline: float, nap_s: float = 0.2) -> None:
    """Call `train_once` (updates done, 0 when none is owed) until none is owed or `deadline` (perf_counter)
    passes; a retryable Redis error (restarting, hung) is waited out, not raised."""
    while time.perf_counter() < deadline:
        try:
            if not train_once():
                return
        except RETRYABLE:
            time.sleep(nap_s)


@ray.remote(max_concurrency=4)
class LearnerActor:
    """One Learner on one replay; a background thread trains, other calls are served concurrently."""

    def __init__(self, obs_space, action_space, agent_cfg, cfg: LearnerConfig, replay_cfg: ReplayConfig,
                 url: str, device: str, seed: int, env_steps: int = 0, chunk: int = 10,
                 checkpoint: bytes | None = None, env_id: str = "", metrics_bind: str = "0.0.0.0",
                 run_namespace: str | None = None, threads: int = 1, init: bytes | None = None):
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.pm = start_process_metrics("learner", env_id, cfg=ExporterConfig(bind_host=metrics_bind))
        self.agent = Agent(obs_space, action_space, agent_cfg, device=device)
        self.replay = RedisReplay(replay_cfg, url)
        if init is not None:  # a pretraining run's world model (ami train --init-from); a checkpoint wins over it
            load_pretrained(self.agent, pretrained_from_bytes(init))
        self.learner = Learner(self.agent, self.replay, cfg)
        self.cfg, self.chunk = cfg, chunk
        # the run's version high-water mark (None: a learner outside a driver's run, e.g. a benchmark)
        self.keys = RunKeys(url, run_namespace, replay_cfg.socket_timeout_s) if run_namespace else None
        self._load(checkpoint)
        self._base_steps = int(env_steps)
        self._base_inserted = self._inserted()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._busy_s = 0.0
        self._replay_size = 0  # cached: the replay client belongs to the training thread
        self._t_start = time.perf_counter()
        self._latest: dict = {"version": -1, "ref": None, "published_at": 0.0, "updates": 0}
        self._weights_mb = 0.0
        self._t_replay = 0.0
        # Ray restarted this actor after a crash: publish nothing until the driver restore()s the last checkpoint
        with warnings.catch_warnings():  # Ray's property reads a deprecated attribute internally
            warnings.simplefilter("ignore", DeprecationWarning)
            self.needs_restore = ray.get_runtime_context().was_current_actor_reconstructed
        if not self.needs_restore:
            self._publish()

    def _load(self, checkpoint: bytes | None) -> None:
        if checkpoint is not None:
            self.learner.restore(checkpoint_state(checkpoint))

    def restore(self, checkpoint: bytes | None, env_steps: int) -> dict:
        """After Ray restarted this actor: come back from the run's last checkpoint at the run's env steps. The
        first version published afterwards is above every version published before the crash (never reused)."""
        self.stop()
        with self._lock:
            self._load(checkpoint)
            published = self.keys.version() if self.keys else 0
            self.learner.version = max(self.learner.version, published) + 1
            self._base_steps, self._base_inserted = int(env_steps), self._inserted()
            self._publish()
            self.needs_restore = False
        return self.status()

    def metrics_target(self) -> dict:
        """Where this process serves /metrics, for the driver's discovery."""
        return self.pm.target.to_dict()

    # ----- snapshots ----------------------------------------------------------------------------------------
    def _publish(self) -> None:
        w = weights_numpy(self.agent)
        self._weights_mb = sum(v.nbytes for v in w.values()) / 1e6
        ref = ray.put(w)
        now = time.time()
        self._latest = {"version": self.learner.version, "ref": ref, "published_at": now,
                        "updates": self.learner.updates}
        if self.keys:  # the high-water mark a restarted learner continues from
            try:
                self.keys.set_version(self.learner.version)
            except RETRYABLE:
                pass  # Redis restarting or hung; the next publish writes a higher mark
        self.pm.learner.published(self.learner.version)

    def latest(self) -> dict:
        """{version, ref (ObjectRef of the weights), published_at, updates}: never waits on training."""
        return {**self._latest, "updates": self.learner.updates}

    def current_weights(self) -> dict:
        """The weights right now (not a new version), for the final evaluation."""
        with self._lock:
            return {"version": self.learner.version, "ref": ray.put(weights_numpy(self.agent))}

    # ----- training -----------------------------------------------------------------------------------------
    def _inserted(self) -> int:
        return int(self.replay.stats().get("inserted_transitions", 0))

    def env_steps(self) -> int:
        return self._base_steps + self._inserted() - self._base_inserted

    def _train_owed(self, env_steps: int, limit: int | None = None) -> int:
        due = self.learner.due(env_steps)
        if limit is not None:
            due = min(due, limit)
        if due:
            self._replay_size = self.replay.size()
        if not due or self._replay_size < self.cfg.batch_size:
            return 0
        t0 = time.perf_counter()
        with self._lock:
            published = self.learner.train(due)
            if published:
                self._publish()
            latest = dict(self.learner.latest)
        dt = time.perf_counter() - t0
        self._busy_s += dt
        self.pm.learner.update(latest, n=due, seconds=dt)
        if t0 - self._t_replay >= 2.0:
            self._t_replay = t0
            self.pm.replay.observe_client(self.replay.stats())
        return due

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if not self._train_owed(self.env_steps(), self.chunk):
                        self._stop.wait(0.01)
                except RETRYABLE:  # Redis restarting (its supervisor brings it back) or hung for a moment
                    self._stop.wait(0.2)
        except Exception:  # surfaced through status(); the driver stops the run
            self._error = traceback.format_exc(limit=6)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="ami-learner", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def finish(self, env_steps: int, max_s: float = 120.0) -> dict:
        """Stop the loop, then run the updates still owed at the run's final env steps (bounded in time; a Redis
        restarting meanwhile is waited for within that time, as the loop does: the soak once ended a run with a
        ConnectionError here)."""
        self.stop()
        train_while_owed(lambda: self._train_owed(env_steps, self.chunk), time.perf_counter() + max_s)
        return self.status()

    def status(self) -> dict:
        wall = time.perf_counter() - self._t_start
        return {"updates": self.learner.updates, "version": self.learner.version, "error": self._error,
                "busy_s": self._busy_s, "wall_s": wall, "replay_size": self._replay_size,
                "device": str(self.agent.device), "weights_mb": self._weights_mb,
                "needs_restore": self.needs_restore,
                "node_id": ray.get_runtime_context().get_node_id()}

    def drain_metrics(self) -> dict:
        """Means of the update metrics since the last call (the driver's log lines)."""
        with self._lock:
            return self.learner.drain_metrics()

    def checkpoint(self, counters: dict) -> bytes:
        """The learner state (model, optimisers, targets, counters) as the bytes of a checkpoint file."""
        with self._lock:
            data = self.learner.checkpoint(counters)
        self.pm.learner.checkpoint_saved()
        return data

