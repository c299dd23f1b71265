"""The Ray backend: `ami train --backend ray`.

Places one LearnerActor (on a GPU node when the cluster has one), one EvaluatorActor and K ActorWorkers
(spread round-robin over nodes); the driver loop (cluster/loop.py) then polls them through `RayBackend.step()`,
which also reads RUN_DIR/scale.json (written by `ami scale`) to add or remove actors while the run goes on.
Ctrl-C stops the actors, writes the final checkpoint and summary, and stops what ami started.
"""

from __future__ import annotations

import hashlib
import json
import os

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ami.actors.ray_actor import ActorSpec, ActorWorker, EvaluatorActor
from ami.actors.runner import RunnerPlace
from ami.cluster.bookkeeping import RunBook
from ami.cluster.config import TrainConfig, env_spec
from ami.cluster.envinfo import EnvInfo
from ami.cluster.loop import drive
from ami.cluster.observe import RunObserver
from ami.cluster.ray_figures import RunFigures
from ami.cluster.recovery import DEAD, UNREACHABLE, Recovery
from ami.cluster.rundir import RunDir
from ami.cluster.scale import RUNNING_FILE, SCALE_FILE, read_scale_request
from ami.cluster.services import Services
from ami.learner.learner import checkpoint_counters
from ami.learner.ray_learner import LearnerActor
from ami.memory.config import ReplayConfig
from ami.memory.redis_replay import RedisReplay
from ami.memory.run_keys import RunKeys


def train_ray(cfg: TrainConfig, agent_cfg, info: EnvInfo, run: RunDir, record: dict | None = None,
              progress: bool = True, redis_url: str | None = None, ray_addr: str | None = None,
              metrics_port: int | None = None) -> dict:
    """Train with Ray actors and a Ray learner on a Redis replay (`record`: config.yaml of a new run, None:
    resume from its checkpoint); returns the summary (also in summary.json)."""
    ckpt = run.latest_checkpoint.read_bytes() if record is None and run.latest_checkpoint.exists() else None
    services = Services(redis_url, ray_addr, cfg.runtime.num_cpus, cfg.runtime.redis_aof).start()
    try:
        run.create()
        book = RunBook(cfg, run, checkpoint_counters(ckpt) if ckpt else None, backend="ray")
        backend = RayBackend(cfg, info, run, agent_cfg, services, book, ckpt, metrics_port)
        try:
            return drive(cfg, run, book, backend, record, progress)
        finally:
            backend.close()
    finally:
        services.close()


class RayBackend(Recovery, RunFigures):
    """One run's actors, learner and evaluator, polled by the driver loop (cluster.loop.Backend)."""

    def __init__(self, cfg: TrainConfig, info: EnvInfo, run: RunDir, agent_cfg, services: Services,
                 book: RunBook, ckpt: bytes | None, metrics_port: int | None = None):
        r, rt = cfg.run, cfg.runtime
        url = services.url
        self.cfg, self.info, self.run, self.agent_cfg, self.url = cfg, info, run, agent_cfg, url
        self.services, self.ckpt0, self.book = services, ckpt, book
        self.obs = RunObserver(run.path.name, r.env_id, metrics_port, services.metrics_bind)
        counters = checkpoint_counters(ckpt) if ckpt else None
        self.fresh = ckpt is None
        self.env_steps = book.env_steps
        self._returns: list[float] = []
        path = run.path.resolve()  # one replay namespace per run directory
        ns = f"ami:{path.name}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        self.replay_cfg = ReplayConfig(capacity_transitions=r.replay_capacity, namespace=f"{ns}:replay",
                                       seed=r.seed, socket_timeout_s=rt.redis_timeout_s)
        self.namespace = ns
        self.replay = RedisReplay(self.replay_cfg, url)  # the driver's view: sizes and counters
        if self.fresh:
            self.replay.clear()
        self.inserted0 = int(self.replay.stats().get("inserted_transitions", 0))
        self.keys = RunKeys(url, ns, rt.redis_timeout_s)
        self.keys.set_budget(book.env_steps)
        self.keys.set_version(counters["version"] if counters else 0)
        gpus = rt.learner_gpus if rt.learner_gpus >= 0 else (1.0 if ray.cluster_resources().get("GPU") else 0.0)
        device = "cuda" if gpus > 0 else r.device
        self.learner = LearnerActor.options(num_cpus=0, num_gpus=gpus, max_restarts=rt.max_restarts).remote(
            info.observation_space, info.action_space, agent_cfg, cfg.learner, self.replay_cfg, url, device,
            r.seed, book.env_steps, rt.learner_chunk, ckpt, r.env_id, services.metrics_bind, ns,
            threads=rt.learner_threads)
        self.obs.watch("learner", self.learner)
        self.learner_up = True
        self.restarts = {"actor": 0, "learner": 0, "redis": 0}
        self.carried: dict[int, dict] = {}  # counters of actor incarnations that crashed
        self.actor_restarts: dict[int, int] = {}
        self.recoveries: list[dict] = []
        self.raced: dict[int, int] = {}
        self.topped_up_at = -1  # stored steps at the last top-up (no progress since: stop topping up)
        self.evaluator = EvaluatorActor.options(num_cpus=0, max_restarts=rt.max_restarts).remote(
            env_spec(r), info.observation_space, info.action_space, agent_cfg, r.eval_episodes)
        self.handles: dict[int, object] = {}
        self.futures: dict[int, ray.ObjectRef] = {}
        self.status: dict[int, dict] = {}
        self.lstat: dict = {}
        self.eval_pending: tuple | None = None
        self.lag_samples: list[int] = []
        scale_file = run.path / SCALE_FILE
        self.scale_mtime = scale_file.stat().st_mtime if scale_file.exists() else 0.0  # older requests: done
        self.scale_to(r.actors)
        self._write_running()
        ray.get(self.learner.start.remote())
        self.lstat = ray.get(self.learner.status.remote())

    # ----- actors -------------------------------------------------------------------------------------------
    def _spec(self, actor_id: int) -> ActorSpec:
        r, rt, lc = self.cfg.run, self.cfg.runtime, self.cfg.learner
        seed = r.seed + 7919 * actor_id + self.book.env_steps
        place = RunnerPlace(num_envs=r.envs_per_actor, seed=seed, actor_id=actor_id)
        return ActorSpec(r.env_id, self.info.observation_space, self.info.action_space, self.agent_cfg,
                         self.cfg.runner, place, self.replay_cfg, self.url, self.namespace, r.steps, lc.warmup_steps,
                         lc.updates_per_step, rt.max_update_lag, rt.version_check_every, rt.claim_steps,
                         self.services.metrics_bind, env_spec(r, r.explore_env_id))

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
        h = ActorWorker.options(num_cpus=self.cfg.runtime.actor_cpus, scheduling_strategy=self._place(i),
                                max_restarts=self.cfg.runtime.max_restarts).remote(self._spec(i), self.learner)
        self.handles[i] = h
        self.futures[i] = h.run.remote(self.fresh)
        self.obs.watch(f"actor-{i}", h)

    def _place(self, i: int):
        """Actor i goes to alive node i mod N. Ray's own SPREAD is best effort and packed both actors of a
        2-node test cluster onto one node now and then. Actors that reserve CPUs may go elsewhere (soft) when
        their node is full; zero-CPU actors always fit, so they are pinned (an actor whose node died is replaced
        by a new one on a live node: cluster/recovery.py)."""
        nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])
        if len(nodes) < 2:
            return "SPREAD"
        return NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=self.cfg.runtime.actor_cpus > 0)

    def _check_scale_file(self) -> None:
        req = read_scale_request(self.run.path, self.scale_mtime)
        if req is not None:
            self.scale_mtime, k = req
            self.scale_to(k)
            self._write_running()

    def _write_running(self) -> None:
        self.run.write(RUNNING_FILE, json.dumps({"pid": os.getpid(), "actors": len(self.futures)}))

    # ----- the loop -----------------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.services.supervise():  # the private redis-server crashed: back on its AOF, same port
            self._restarted("redis")
        if self.futures:
            ready, _ = ray.wait(list(self.futures.values()), num_returns=len(self.futures),
                                timeout=self.cfg.runtime.poll_s)
            for i in [i for i, f in self.futures.items() if f in ready]:
                try:
                    ray.get(self.futures.pop(i))  # raises if the actor failed
                    self.obs.forget(f"actor-{i}")  # done stepping (budget spent, or scaled away)
                except DEAD:
                    self._actor_crashed(i)
        ids = list(self.handles)
        refs = [self.handles[i].status.remote() for i in ids]
        for i, ref in zip(ids, refs, strict=True):
            try:
                st = ray.get(ref, timeout=30)
            except UNREACHABLE:
                continue  # crashed (noticed through its run() call) or still restarting
            self._returns.extend(st["returns"])
            self.status[i] = st
        self._poll_learner()
        self.env_steps = self.book.resumed_at + sum(
            s["env_steps"] + self.carried.get(i, {}).get("env_steps", 0) for i, s in self.status.items())
        for i in self.futures:  # policy lag, sampled: versions the acting weights are behind the learner's
            if i in self.status:
                self.lag_samples.append(max(0, self.lstat["version"] - self.status[i]["version"]))
        self.obs.collect()

    # ----- the driver loop's Backend protocol ----------------------------------------------------------------
    @property
    def updates(self) -> int:
        return self.lstat["updates"]

    @property
    def version(self) -> int:
        return self.lstat["version"]

    @property
    def live(self) -> int:
        return len(self.futures)

    def step(self) -> bool:
        if not (self.futures or self._top_up()):
            return False
        self._poll()
        self._check_scale_file()
        return True

    def returns(self) -> list[float]:
        out, self._returns = self._returns, []
        return out

    def can_evaluate(self) -> bool:
        return self.learner_up and self.eval_pending is None

    def start_eval(self, seed: int) -> None:
        latest = self._ask_learner("latest")
        if latest is None or latest["ref"] is None:
            return
        fut = self.evaluator.evaluate.remote(latest["ref"], latest["version"], seed)
        self.eval_pending = (fut, self.env_steps, self.lstat["updates"])

    def evaluations(self, block: bool = False) -> list[tuple[dict, int, int]]:
        if self.eval_pending is None:
            return []
        fut, at, upd = self.eval_pending
        if not ray.wait([fut], timeout=None if block else 0)[0]:
            return []
        self.eval_pending = None
        try:
            return [(ray.get(fut), at, upd)]
        except ray.exceptions.RayError:  # its weights died with a crashed learner: next interval
            return []

    def evaluate_now(self, seed: int) -> dict:
        w = ray.get(self.learner.current_weights.remote())
        return ray.get(self.evaluator.evaluate.remote(w["ref"], w["version"], seed))

    def checkpoint(self, counters: dict) -> bytes | None:
        return self._ask_learner("checkpoint", counters)

    def log_extras(self) -> dict:
        return {**(self._ask_learner("drain_metrics") or {}), "policy_lag_mean": self._lag()[0],
                "actors": len(self.futures)}

    def postfix(self) -> dict:
        return {"lag": self.lstat["version"] - min((s["version"] for s in self.status.values()), default=0)}

    def finish(self, interrupted: bool) -> None:
        for h in self.handles.values():
            h.stop.remote()
        for i, f in list(self.futures.items()):
            ray.get(f)
            self.futures.pop(i)
        self._poll()
        self.env_steps = self._stored()  # what the replay holds: a crashed actor's unstored steps never count
        if interrupted:
            ray.get(self.learner.stop.remote())
            self.lstat = ray.get(self.learner.status.remote())
        else:
            self.lstat = ray.get(self.learner.finish.remote(self.env_steps))

    def extras(self, interrupted: bool) -> dict:
        return self._extras(interrupted)

    def close(self) -> None:
        """Kill this run's actors (they would outlive the driver on an attached cluster) and forget its files."""
        for h in [*self.handles.values(), self.learner, self.evaluator]:
            try:
                ray.kill(h)
            except Exception:
                pass
        self.replay.close()
        self.keys.close()
        self.obs.close()
        (self.run.path / RUNNING_FILE).unlink(missing_ok=True)
