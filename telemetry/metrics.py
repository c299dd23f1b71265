"""Every Prometheus metric of ami, defined once, and one small typed helper per role.

Names follow `ami_<role>_<what>_<unit>`. `CATALOG` is plain data (no prometheus_client objects): a `MetricSet`
built at runtime turns it into metrics inside the process's own CollectorRegistry, with the process identity
(role, actor_id, env_id) filled into every series. `deploy/grafana/generate.py` and the tests read `CATALOG`,
so dashboards and code cannot drift apart.

The helpers take the dicts our code already produces: `LearnerMetrics.update` the metrics of `Updater.step()`
(`Learner.latest` holds the newest of each), `ReplayMetrics.observe_*` the dict of `ReplayMemory.stats()`,
`DriverMetrics.evaluation` the dict of `actors.runner.evaluate`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ACTOR = ("actor_id", "env_id")
"""Labels of series an actor process owns."""
RUN = ("env_id",)
"""Labels of series the learner, the driver (and the replay server view) own."""
CLIENT = ("role", "actor_id", "env_id")
"""Labels of replay-client series: every process that writes or samples keeps its own."""

LOSS_TERMS = ("prediction", "variance", "covariance", "z", "cost", "done", "critic", "policy", "align", "total")
"""Values of the `term` label of ami_learner_loss; `Updater.step()` reports them as loss_<term> ('align' only
with latent actions: a run started with --init-from)."""

LEVEL2_TERMS = ("prediction", "variance", "covariance", "z")
"""Values of the `term` label of ami_learner_level2_loss; `Updater.step()` reports them as l2_loss_<term>."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric as Prometheus will see it."""

    name: str
    """Full name; counters end in _total (prometheus_client keeps it)."""
    kind: str
    """counter | gauge | histogram | summary."""
    help: str
    """HELP text."""
    labels: tuple[str, ...]
    """Label names, identity labels first; the extra ones are passed per observation."""
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    """Histogram buckets (histograms only)."""

    @property
    def series(self) -> tuple[str, ...]:
        """Names of the series this metric exposes (a histogram: _bucket/_sum/_count)."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        if self.kind == "summary":
            return (f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _m(name: str, kind: str, help_: str, labels: tuple[str, ...], **kw) -> MetricSpec:
    return MetricSpec(name, kind, help_, labels, **kw)


CATALOG: tuple[MetricSpec, ...] = (
    # ----- actor ------------------------------------------------------------------------------------------------
    _m("ami_actor_env_steps_total", "counter", "Env steps taken (every env of the vector env).", ACTOR),
    _m("ami_actor_episodes_total", "counter", "Episodes finished.", ACTOR),
    _m("ami_actor_episode_return", "summary", "Returns of finished episodes (rate(_sum)/rate(_count) = mean).",
       ACTOR),
    _m("ami_actor_episode_return_last", "gauge", "Return of the last finished episode.", ACTOR),
    _m("ami_actor_segments_total", "counter", "Segments handed to the replay.", ACTOR),
    _m("ami_actor_planning_latency_seconds", "histogram", "Wall time of one batched plan (all envs).", ACTOR),
    _m("ami_actor_planned_cost", "gauge", "Predicted cost of the last chosen plan, mean over envs.", ACTOR),
    _m("ami_actor_weights_version", "gauge", "Weights version the actor acts with.", ACTOR),
    _m("ami_actor_paused_seconds_total", "counter", "Time paused because the learner fell behind.", ACTOR),
    _m("ami_actor_budget_wait_seconds_total", "counter",
       "Time spent retrying step-budget claims (Redis unreachable or hung).", ACTOR),
    # ----- weights (observed by each actor) ---------------------------------------------------------------------
    _m("ami_weights_lag_versions", "gauge", "Newest published version minus the version acted with.", ACTOR),
    _m("ami_weights_broadcast_latency_seconds", "histogram", "Publish-to-acting time of a weights version.",
       ACTOR),
    # ----- learner ----------------------------------------------------------------------------------------------
    _m("ami_learner_loss", "gauge", "World-model, critic and policy loss terms (mean since the last report).",
       (*RUN, "term")),
    _m("ami_learner_level2_loss", "gauge", "H-JEPA level-2 loss terms (runs with agent.hierarchy.enabled).",
       (*RUN, "term")),
    _m("ami_learner_embedding_std_min", "gauge", "Smallest per-dimension std of the embeddings (collapse -> 0).",
       RUN),
    _m("ami_learner_embedding_std_mean", "gauge", "Mean per-dimension std of the embeddings.", RUN),
    _m("ami_learner_effective_rank", "gauge", "Effective rank of the embeddings (collapse -> 1).", RUN),
    _m("ami_learner_grad_norm", "gauge", "World-model gradient norm before clipping.", RUN),
    _m("ami_learner_updates_total", "counter", "Gradient updates done.", RUN),
    _m("ami_learner_update_duration_seconds", "histogram", "Wall time of one update (sample + step).", RUN),
    _m("ami_learner_weights_version", "gauge", "Newest weights version published.", RUN),
    _m("ami_learner_snapshots_total", "counter", "Weights versions published.", RUN),
    _m("ami_learner_checkpoint_age_seconds", "gauge", "Seconds since the learner state was last checkpointed.",
       RUN),
    # ----- replay (server view, reported by the driver) ---------------------------------------------------------
    _m("ami_replay_size_transitions", "gauge", "Transitions stored.", RUN),
    _m("ami_replay_capacity_transitions", "gauge", "Transitions the replay keeps before FIFO eviction.", RUN),
    _m("ami_replay_inserts_total", "counter", "Transitions inserted.", RUN),
    _m("ami_replay_evicted_transitions_total", "counter", "Transitions evicted (FIFO).", RUN),
    _m("ami_replay_samples_total", "counter", "Windows sampled.", RUN),
    _m("ami_replay_samples_per_insert", "gauge", "Windows sampled per transition inserted, since the start.", RUN),
    # ----- replay (client view, every process) ------------------------------------------------------------------
    _m("ami_replay_dropped_transitions_total", "counter", "Transitions a writer gave up on.", CLIENT),
    _m("ami_replay_corrupt_skipped_total", "counter", "Corrupt records skipped while sampling.", CLIENT),
    _m("ami_replay_write_retries_total", "counter", "Replay writes retried.", CLIENT),
    _m("ami_replay_buffered_transitions", "gauge", "Transitions waiting in the writer's buffer.", CLIENT),
    # ----- driver -----------------------------------------------------------------------------------------------
    _m("ami_driver_env_steps", "gauge", "Env steps of the run so far (resumed runs included).", RUN),
    _m("ami_driver_target_env_steps", "gauge", "Env steps the run is asked to take.", RUN),
    _m("ami_driver_episodes", "gauge", "Episodes of the run so far.", RUN),
    _m("ami_driver_updates_per_second", "gauge", "Learner updates per second (smoothed).", RUN),
    _m("ami_driver_live_actors", "gauge", "Actor processes running.", RUN),
    _m("ami_driver_pending_actors", "gauge",
       "Actors waiting for a node with the CPUs they reserve (an autoscaler adds nodes for them).", RUN),
    _m("ami_driver_eval_return_mean", "gauge", "Mean return of the last evaluation.", RUN),
    _m("ami_driver_eval_return_std", "gauge", "Std of the returns of the last evaluation.", RUN),
    _m("ami_driver_eval_success_rate", "gauge", "Share of evaluation episodes that reached the goal (goal envs).",
       RUN),
    _m("ami_driver_evals_total", "counter", "Evaluations finished.", RUN),
    _m("ami_driver_discovery_targets", "gauge", "Targets in the discovery file (processes exporting metrics).",
       RUN),
    _m("ami_driver_restarts_total", "counter", "Crashed processes brought back (process: actor, learner, redis).",
       (*RUN, "process")),
    _m("ami_driver_redis_unreachable_seconds", "gauge",
       "Seconds the run's Redis has not answered the driver's PING (0: it answers); actors and learner wait.", RUN),
)

RESTARTABLE = ("actor", "learner", "redis")
"""Values of the `process` label of ami_driver_restarts_total."""

SPECS: dict[str, MetricSpec] = {s.name: s for s in CATALOG}
"""CATALOG by name."""


@dataclass(frozen=True)
class Identity:
    """Who a process is; fills the identity labels of every series it exports."""

    role: str
    """actor | learner | driver | evaluator."""
    env_id: str
    """Gymnasium id of the run."""
    actor_id: int | None = None
    """Actor id (actors only)."""

    def labels(self) -> dict[str, str]:
        """Label values for every identity label name (missing ones empty, which Prometheus drops)."""
        return {"role": self.role, "env_id": self.env_id,
                "actor_id": "" if self.actor_id is None else str(self.actor_id)}


class MetricSet:
    """The metrics of one process: its own CollectorRegistry, metrics created on first use from CATALOG."""

    def __init__(self, identity: Identity):
        from prometheus_client import CollectorRegistry

        self.identity = identity
        self.registry = CollectorRegistry(auto_describe=True)
        self._ids = identity.labels()
        self._metrics: dict[str, object] = {}
        self._totals: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def metric(self, name: str, **extra: str):
        """The child of metric `name` for this process (identity labels + `extra`)."""
        with self._lock:
            m = self._metrics.get(name)
            if m is None:
                m = self._metrics[name] = self._create(SPECS[name])
        spec = SPECS[name]
        values = {k: extra[k] if k in extra else self._ids[k] for k in spec.labels}
        return m.labels(**values)

    def _create(self, spec: MetricSpec):
        import prometheus_client as pc

        kw = {"labelnames": spec.labels, "registry": self.registry}
        if spec.kind == "histogram":
            return pc.Histogram(spec.name, spec.help, buckets=spec.buckets, **kw)
        cls = {"counter": pc.Counter, "gauge": pc.Gauge, "summary": pc.Summary}[spec.kind]
        return cls(spec.name, spec.help, **kw)

    def set_total(self, name: str, total: float, **extra: str) -> None:
        """Advance counter `name` to a cumulative `total` kept elsewhere (a restarted source counts afresh)."""
        key = (name, tuple(sorted(extra.items())))
        with self._lock:
            last = self._totals.get(key, 0.0)
            self._totals[key] = total
        delta = total - last if total >= last else total
        self.metric(name, **extra).inc(max(0.0, delta))

    def touch(self, *names: str) -> None:
        """Export counters/histograms/summaries at zero before their first event (gauges stay absent until set)."""
        for name in names:
            if SPECS[name].kind != "gauge":
                self.metric(name)


class ActorMetrics:
    """An actor process: call from its step loop."""

    def __init__(self, ms: MetricSet):
        self.ms = ms
        ms.touch(*(s.name for s in CATALOG if s.labels == ACTOR))

    def step(self, env_steps: int) -> None:
        """After each vector step: `env_steps` = envs stepped (num_envs)."""
        self.ms.metric("ami_actor_env_steps_total").inc(env_steps)

    def episodes(self, returns: Iterable[float]) -> None:
        """Returns of episodes finished since the last call (EpisodeRunner.episodes: (return, length) or floats)."""
        for r in returns:
            r = float(r[0] if isinstance(r, tuple) else r)
            self.ms.metric("ami_actor_episodes_total").inc()
            self.ms.metric("ami_actor_episode_return").observe(r)
            self.ms.metric("ami_actor_episode_return_last").set(r)

    def plan(self, latency_s: float, planned_cost: float | None = None) -> None:
        """After each Agent.act(): its wall time and the predicted cost of the chosen plan (mean over envs)."""
        self.ms.metric("ami_actor_planning_latency_seconds").observe(latency_s)
        if planned_cost is not None:
            self.ms.metric("ami_actor_planned_cost").set(float(planned_cost))

    def segment(self, n: int = 1) -> None:
        """After handing segments to the replay."""
        self.ms.metric("ami_actor_segments_total").inc(n)

    def weights(self, used: int, latest: int, latency_s: float | None = None) -> None:
        """After every version check: version acted with, newest version known; latency when a new one landed."""
        self.ms.metric("ami_actor_weights_version").set(used)
        self.ms.metric("ami_weights_lag_versions").set(max(0, latest - used))
        if latency_s is not None:
            self.ms.metric("ami_weights_broadcast_latency_seconds").observe(max(0.0, latency_s))

    def paused(self, seconds: float) -> None:
        """After waiting for the learner to catch up."""
        self.ms.metric("ami_actor_paused_seconds_total").inc(seconds)

    def budget_wait(self, seconds: float) -> None:
        """After a step-budget claim that needed retries."""
        self.ms.metric("ami_actor_budget_wait_seconds_total").inc(seconds)


class LearnerMetrics:
    """The learner process: call from its update loop."""

    def __init__(self, ms: MetricSet):
        self.ms = ms
        ms.touch("ami_learner_updates_total", "ami_learner_update_duration_seconds", "ami_learner_snapshots_total")
        self._saved_at = time.time()  # before the first checkpoint: the age of unsaved work
        ms.metric("ami_learner_checkpoint_age_seconds").set_function(lambda: time.time() - self._saved_at)

    def update(self, metrics: Mapping[str, float], n: int = 1, seconds: float | None = None) -> None:
        """After `n` updates (taking `seconds`): `metrics` as Updater.step() / Learner.latest give them."""
        for term in LOSS_TERMS:
            if f"loss_{term}" in metrics:
                self.ms.metric("ami_learner_loss", term=term).set(float(metrics[f"loss_{term}"]))
        for term in LEVEL2_TERMS:
            if f"l2_loss_{term}" in metrics:
                self.ms.metric("ami_learner_level2_loss", term=term).set(float(metrics[f"l2_loss_{term}"]))
        for key, name in (("embed_std_min", "ami_learner_embedding_std_min"),
                          ("embed_std_mean", "ami_learner_embedding_std_mean"),
                          ("effective_rank", "ami_learner_effective_rank"), ("grad_norm", "ami_learner_grad_norm")):
            if key in metrics:
                self.ms.metric(name).set(float(metrics[key]))
        if n:
            self.ms.metric("ami_learner_updates_total").inc(n)
            if seconds is not None:
                h = self.ms.metric("ami_learner_update_duration_seconds")
                for _ in range(min(n, 64)):  # one observation per update (bounded work per call)
                    h.observe(seconds / n)

    def published(self, version: int) -> None:
        """After a new weights version was published."""
        self.ms.metric("ami_learner_weights_version").set(version)
        self.ms.metric("ami_learner_snapshots_total").inc()

    def checkpoint_saved(self) -> None:
        """After the learner state was serialised for a checkpoint."""
        self._saved_at = time.time()


class ReplayMetrics:
    """A replay client (any process) and, in the driver, the replay server's totals."""

    def __init__(self, ms: MetricSet):
        self.ms = ms
        ms.touch(*(s.name for s in CATALOG if s.labels == CLIENT))

    def observe_client(self, stats: Mapping[str, float]) -> None:
        """This process's own replay counters, from its ReplayMemory.stats() (call every few seconds)."""
        for key, name in (("dropped_transitions", "ami_replay_dropped_transitions_total"),
                          ("corrupt_skipped", "ami_replay_corrupt_skipped_total"),
                          ("write_retries", "ami_replay_write_retries_total")):
            self.ms.set_total(name, float(stats.get(key, 0.0)))
        self.ms.metric("ami_replay_buffered_transitions").set(float(stats.get("buffered_transitions", 0.0)))

    def observe_server(self, stats: Mapping[str, float]) -> None:
        """The shared replay's totals, from the driver's ReplayMemory.stats() (one process only: no double counts)."""
        ins, smp = float(stats.get("inserted_transitions", 0.0)), float(stats.get("sampled_windows", 0.0))
        self.ms.metric("ami_replay_size_transitions").set(float(stats.get("size_transitions", 0.0)))
        self.ms.metric("ami_replay_capacity_transitions").set(float(stats.get("capacity_transitions", 0.0)))
        self.ms.set_total("ami_replay_inserts_total", ins)
        self.ms.set_total("ami_replay_samples_total", smp)
        self.ms.set_total("ami_replay_evicted_transitions_total", float(stats.get("evicted_transitions", 0.0)))
        self.ms.metric("ami_replay_samples_per_insert").set(smp / ins if ins else 0.0)


class DriverMetrics:
    """The driver: call from its watch loop."""

    def __init__(self, ms: MetricSet):
        self.ms = ms
        ms.touch("ami_driver_evals_total")
        for proc in RESTARTABLE:
            ms.metric("ami_driver_restarts_total", process=proc)

    def restarted(self, process: str) -> None:
        """After a crashed process (actor, learner or redis) was brought back."""
        self.ms.metric("ami_driver_restarts_total", process=process).inc()

    def progress(self, env_steps: int, target_steps: int, episodes: int, updates_per_s: float,
                 live_actors: int) -> None:
        """Once per poll."""
        for name, v in (("ami_driver_env_steps", env_steps), ("ami_driver_target_env_steps", target_steps),
                        ("ami_driver_episodes", episodes), ("ami_driver_updates_per_second", updates_per_s),
                        ("ami_driver_live_actors", live_actors)):
            self.ms.metric(name).set(float(v))

    def evaluation(self, result: Mapping[str, float]) -> None:
        """After an evaluation: the dict of actors.runner.evaluate (eval_return_mean, eval_return_std and, on goal
        envs, eval_success_rate)."""
        self.ms.metric("ami_driver_eval_return_mean").set(float(result["eval_return_mean"]))
        self.ms.metric("ami_driver_eval_return_std").set(float(result.get("eval_return_std", 0.0)))
        if "eval_success_rate" in result:
            self.ms.metric("ami_driver_eval_success_rate").set(float(result["eval_success_rate"]))
        self.ms.metric("ami_driver_evals_total").inc()

    def discovery(self, targets: int) -> None:
        """After the discovery file was refreshed."""
        self.ms.metric("ami_driver_discovery_targets").set(targets)

    def pending_actors(self, n: int) -> None:
        """Once per poll (Ray runs): actors not yet placed on a node."""
        self.ms.metric("ami_driver_pending_actors").set(float(n))

    def redis_unreachable(self, seconds: float) -> None:
        """Every poll of a Ray run: how long Redis has been unreachable (0 while it answers)."""
        self.ms.metric("ami_driver_redis_unreachable_seconds").set(seconds)
