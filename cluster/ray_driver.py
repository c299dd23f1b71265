"""The Ray backend: `ami train --backend ray`.

Places one LearnerActor (on a GPU node when the cluster has one), one EvaluatorActor and K ActorWorkers
(spread round-robin over nodes); the driver loop (cluster/loop.py) then polls them through `RayBackend.step()`,
which also reads RUN_DIR/scale.json (written by `ami scale`) to add or remove actors while the run goes on.
Ctrl-C or SIGTERM (cluster/loop.py) stops the actors, writes the final checkpoint and summary, and stops what ami
started.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

import ray

from ami.actors.ray_actor import ActorSpec, EvaluatorActor
from ami.actors.runner import RunnerPlace, runner_seed
from ami.cluster.actor_pool import ActorPool, reserved_cpus
from ami.cluster.bookkeeping import RunBook
from ami.cluster.config import TrainConfig, env_spec
from ami.cluster.envinfo import EnvInfo
from ami.cluster.learner_link import LearnerLink
from ami.cluster.loop import drive
from ami.cluster.observe import RunObserver
from ami.cluster.ray_figures import Lag, ray_extras
from ami.cluster.recovery import RAY_RESTARTS, Outage, RestartBudget
from ami.cluster.rundir import RunDir
from ami.cluster.scale import RUNNING_FILE, SCALE_FILE, read_scale_request
from ami.cluster.services import Services
from ami.learner.learner import checkpoint_state
from ami.learner.ray_learner import LearnerActor
from ami.memory.config import ReplayConfig
from ami.memory.redis_replay import RedisReplay
from ami.memory.run_keys import RunKeys


def train_ray(cfg: TrainConfig, agent_cfg, info: EnvInfo, run: RunDir, record: dict | None = None,
              progress: bool = True, redis_url: str | None = None, ray_addr: str | None = None,
              metrics_port: int | None = None, init: bytes | None = None) -> dict:
    """Train with Ray actors and a Ray learner on a Redis replay (`record`: config.yaml of a new run, None:
    resume from its checkpoint; `init`: a pretraining checkpoint to start from); returns the summary (also in
    summary.json)."""
    found = run.read_checkpoint(checkpoint_state) if record is None else None
    ckpt = found[0] if found else None
    services = Services(redis_url, ray_addr, cfg.runtime.num_cpus, cfg.runtime.redis_aof).start()
    try:
        run.create()
        book = RunBook(cfg, run, found[1]["counters"] if found else None, backend="ray")
        backend = RayBackend(cfg, info, run, agent_cfg, services, book, ckpt, metrics_port, init)
        try:
            return drive(cfg, run, book, backend, record, progress)
        finally:
            backend.close()
    finally:
        services.close()


class RayBackend:
    """One run's actors, learner and evaluator, polled by the driver loop (cluster.loop.Backend)."""

    def __init__(self, cfg: TrainConfig, info: EnvInfo, run: RunDir, agent_cfg, services: Services,
                 book: RunBook, ckpt: bytes | None, metrics_port: int | None = None, init: bytes | None = None):
        r, rt = cfg.run, cfg.runtime
        self.cfg, self.info, self.run, self.agent_cfg = cfg, info, run, agent_cfg
        self.services, self.ckpt0, self.book = services, ckpt, book
        # the learner's constructor takes the checkpoint from the object store by this ref, held for the whole run:
        # Ray re-reads constructor arguments when it restarts an actor, and bytes passed inline (megabytes, so
        # Ray stores them) were freed once the learner was up, so a resumed run's learner could never restart
        self.ckpt_ref = ray.put(ckpt) if ckpt is not None else None
        self.init_ref = ray.put(init) if init is not None and ckpt is None else None  # (held likewise)
        self.obs = RunObserver(run.path.name, r.env_id, metrics_port, services.metrics_bind)
        self.fresh = ckpt is None
        self.env_steps = book.env_steps
        self._returns: list[float] = []
        self.restarts = {"actor": 0, "learner": 0, "redis": 0}
        self.lag = Lag()
        self.topped_up_at = -1  # stored steps at the last top-up (no progress since: stop topping up)
        path = run.path.resolve()  # one replay namespace per run directory
        self.namespace = f"ami:{path.name}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        self.replay_cfg = ReplayConfig(capacity_transitions=r.replay_capacity, namespace=f"{self.namespace}:replay",
                                       seed=r.seed, socket_timeout_s=rt.redis_timeout_s)
        self.replay = RedisReplay(self.replay_cfg, services.url)  # the driver's view: sizes and counters
        if self.fresh:
            self.replay.clear()
        self.inserted0 = int(self.replay.stats().get("inserted_transitions", 0))
        self._inserted_seen = 0
        self.redis = Outage("Redis")
        self.keys = RunKeys(services.url, self.namespace, rt.redis_timeout_s)
        self.keys.set_budget(book.env_steps)
        self.keys.set_version(book.resumed_version)
        budget = RestartBudget(rt.max_restarts, rt.restart_window_s)
        self.learner = LearnerLink(self._learner_actor(), self.obs, budget, self._restarted)
        self.evaluator = EvaluatorActor.options(num_cpus=0, max_restarts=RAY_RESTARTS).remote(
            env_spec(r), info.observation_space, info.action_space, agent_cfg, r.eval_episodes)
        self.eval_pending: tuple | None = None
        self.actors = ActorPool(self._spec, self.learner.handle, rt, self.obs, self.fresh, self._restarted, budget,
                                reserved_cpus(rt, services.attached))
        scale_file = run.path / SCALE_FILE
        self.scale_mtime = scale_file.stat().st_mtime if scale_file.exists() else 0.0  # older requests: done
        self.actors.scale_to(r.actors)
        self._write_running()

    def _learner_actor(self):
        r, rt = self.cfg.run, self.cfg.runtime
        gpus = rt.learner_gpus if rt.learner_gpus >= 0 else (1.0 if ray.cluster_resources().get("GPU") else 0.0)
        device = "cuda" if gpus > 0 else r.device
        return LearnerActor.options(num_cpus=0, num_gpus=gpus, max_restarts=RAY_RESTARTS).remote(
            self.info.observation_space, self.info.action_space, self.agent_cfg, self.cfg.learner, self.replay_cfg,
            self.services.url, device, r.seed, self.book.env_steps, rt.learner_chunk, self.ckpt_ref, r.env_id,
            self.services.metrics_bind, self.namespace, threads=rt.learner_threads, init=self.init_ref)

    def _spec(self, actor_id: int) -> ActorSpec:
        r, rt, lc = self.cfg.run, self.cfg.runtime, self.cfg.learner
        seed = runner_seed(r.seed, actor_id, self.book.env_steps)
        place = RunnerPlace(num_envs=r.envs_per_actor, seed=seed, actor_id=actor_id)
        return ActorSpec(r.env_id, self.info.observation_space, self.info.action_space, self.agent_cfg,
                         self.cfg.runner, place, self.replay_cfg, self.services.url, self.namespace, r.steps,
                         lc, rt.max_update_lag, rt.version_check_every, rt.claim_steps, self.services.metrics_bind,
                         env_spec(r, r.explore_env_id))

    def _restarted(self, process: str) -> None:
        self.restarts[process] += 1
        self.obs.driver.restarted(process)

    def _check_scale_file(self) -> None:
        req = read_scale_request(self.run.path, self.scale_mtime)
        if req is not None:
            self.scale_mtime, k = req
            self.actors.scale_to(k)
            self._write_running()

    def _write_running(self) -> None:
        self.run.write(RUNNING_FILE, json.dumps({"pid": os.getpid(), "actors": self.actors.live}))

    # ----- polling ------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        if self.services.supervise():  # the private redis-server crashed: back on its AOF, same port
            self._restarted("redis")
        news = self.redis.update(self.keys.reachable())  # an outage of any length: everyone waits, then goes on
        if news:
            print(news, file=sys.stderr, flush=True)
        self.obs.driver.redis_unreachable(self.redis.down_s)
        self._returns += self.actors.poll(self.cfg.runtime.poll_s)
        self.obs.driver.pending_actors(self.actors.pending)
        self.learner.poll(self._restore_from, self._stored)
        self.env_steps = self.book.resumed_at + self.actors.stepped()
        self.lag.add(self.version, self.actors.versions().values())
        self.obs.collect()

    def _restore_from(self) -> bytes | None:
        """The checkpoint a restarted learner comes back from: the run's last that loads, else the one it began from."""
        found = self.run.read_checkpoint(checkpoint_state)
        return found[0] if found else self.ckpt0

    def _inserted(self) -> int:
        """Transitions the replay received during this invocation: the last count read while every shard
        answered (during a Redis outage, the count before it)."""
        self.replay_stats()
        return self._inserted_seen

    def _stored(self) -> int:
        """Env steps actually in the replay for this run (resumed runs: plus the steps before)."""
        return self.book.resumed_at + self._inserted()

    def _top_up(self) -> bool:
        """Every actor is done: when faults lost claimed-but-unstored steps (a dead actor's buffer, the last second
        of a crashed Redis, a budget claim applied but retried after a timeout), hand them back to the budget and
        run the actors again; True when it did."""
        faults = self.actors.crashes or self.restarts["redis"] or self.actors.claim_retries()
        stored = self._stored()
        if not faults or self.cfg.run.steps <= stored or stored == self.topped_up_at:  # (last: no progress)
            return False
        if self.redis.since is not None:  # what is stored is unknown until Redis is back: wait for it
            time.sleep(self.cfg.runtime.poll_s)
            return True
        self.topped_up_at = stored
        self.keys.set_budget(stored)
        self.actors.run_again()
        return True

    def replay_size(self) -> int:
        try:
            return self.replay.size()
        except Exception:  # redis restarting
            return 0

    def replay_stats(self) -> dict | None:
        """The replay's counters, None while Redis does not answer. A read in which every shard answered also
        keeps the inserted count: the driver loop reads every poll, so a run that ends during an outage still
        counts what the replay held before it (it was once read only at the end, and such a run counted 0)."""
        try:
            st = self.replay.stats()
        except Exception:  # redis down for a moment: the next poll reports
            return None
        if st.get("shards_reachable", 0) >= st.get("shards", 1):
            self._inserted_seen = int(st.get("inserted_transitions", 0)) - self.inserted0
        return st

    # ----- the driver loop's Backend protocol ----------------------------------------------------------------
    @property
    def updates(self) -> int:
        return self.learner.status["updates"]

    @property
    def version(self) -> int:
        return self.learner.status["version"]

    @property
    def learner_up(self) -> bool:
        return self.learner.up

    @property
    def live(self) -> int:
        return self.actors.live - self.actors.pending

    def step(self) -> bool:
        if not (self.actors.live or self._top_up()):
            return False
        self._poll()
        self._check_scale_file()
        return True

    def returns(self) -> list[float]:
        out, self._returns = self._returns, []
        return out

    def can_evaluate(self) -> bool:
        return self.learner.up and self.eval_pending is None

    def start_eval(self, seed: int) -> None:
        latest = self.learner.ask("latest")
        if latest is None or latest["ref"] is None:
            return
        fut = self.evaluator.evaluate.remote(latest["ref"], latest["version"], seed)
        self.eval_pending = (fut, self.env_steps, self.updates)

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
        w = ray.get(self.learner.handle.current_weights.remote())
        return ray.get(self.evaluator.evaluate.remote(w["ref"], w["version"], seed))

    def checkpoint(self, counters: dict) -> bytes | None:
        return self.learner.ask("checkpoint", counters)

    def log_extras(self) -> dict:
        return {**(self.learner.ask("drain_metrics") or {}), "policy_lag_mean": self.lag.mean,
                "actors": self.live}

    def postfix(self) -> dict:
        out = {"lag": self.version - min((s["version"] for s in self.actors.status.values()), default=0)}
        if self.actors.pending:  # waiting for nodes with free CPUs (an autoscaler's cue)
            out["pending"] = self.actors.pending
        return {**out, "redis": f"down {self.redis.down_s:.0f}s"} if self.redis.since is not None else out

    def finish(self, interrupted: bool) -> None:
        self.actors.stop()
        self._poll()
        self.env_steps = self._stored()  # what the replay holds: a crashed actor's unstored steps never count
        self.learner.finish(self.env_steps, interrupted)

    def extras(self, interrupted: bool) -> dict:
        return {"interrupted": interrupted,
                **ray_extras(self.actors, self.learner, self.lag, self.restarts, self._inserted())}

    def close(self) -> None:
        """Kill this run's actors (they would outlive the driver on an attached cluster) and forget its files."""
        for h in [*self.actors.handles.values(), self.learner.handle, self.evaluator]:
            try:
                ray.kill(h)
            except Exception:
                pass
        self.replay.close()
        self.keys.close()
        self.obs.close()
        (self.run.path / RUNNING_FILE).unlink(missing_ok=True)
