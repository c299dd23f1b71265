"""telemetry/metrics.py and telemetry/exporter.py: the helpers read the dicts our code produces, exporters never
collide, Discovery publishes atomically, and nothing happens at import time."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ami.agent.update import Updater
from ami.telemetry.discovery import Discovery, DiscoveryConfig
from ami.telemetry.exporter import ExporterConfig, Target, start_process_metrics
from ami.telemetry.metrics import CATALOG, LOSS_TERMS, Identity, LearnerMetrics, MetricSet, ReplayMetrics

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = ExporterConfig(bind_host="127.0.0.1")


def value(ms: MetricSet, name: str, **labels) -> float | None:
    ids = {k: v for k, v in ms.identity.labels().items() if k in _labels(name)}
    return ms.registry.get_sample_value(name, {**ids, **labels})


def _labels(series: str) -> tuple[str, ...]:
    for s in CATALOG:
        if series in s.series or series == s.name:
            return s.labels
    raise KeyError(series)


def test_nothing_happens_at_import() -> None:
    code = ("import sys, ami.telemetry.metrics, ami.telemetry.exporter; "
            "bad = [m for m in ('prometheus_client', 'ray', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_exporter_ports_never_collide_and_serve_their_own_registry() -> None:
    procs = [start_process_metrics("actor", "CartPole-v1", i, LOOPBACK) for i in range(12)]
    try:
        assert len({p.target.port for p in procs}) == 12
        for i, p in enumerate(procs):
            p.actor.step(i + 1)
            assert p.target.host == "127.0.0.1"
            assert p.target.labels == {"role": "actor", "env_id": "CartPole-v1", "actor_id": str(i)}
        for i, p in enumerate(procs):
            text = urllib.request.urlopen(f"http://{p.target.address}/metrics", timeout=5).read().decode()
            assert f'ami_actor_env_steps_total{{actor_id="{i}",env_id="CartPole-v1"}} {float(i + 1)}' in text
            assert "ami_learner" not in text and "ami_driver" not in text  # only its role's series
    finally:
        for p in procs:
            p.close()


def test_discovery_file_is_atomic_and_follows_the_live_set(tmp_path: Path) -> None:
    d = Discovery("run-a", DiscoveryConfig(directory=str(tmp_path)))
    d.set("driver", Target("10.0.0.1", 9000, {"role": "driver", "env_id": "E"}))
    d.set("actor-0", Target("10.0.0.2", 41234, {"role": "actor", "env_id": "E", "actor_id": "0"}).to_dict())
    doc = json.loads(d.path.read_text())
    assert doc == [{"targets": ["10.0.0.2:41234"], "labels": {"role": "actor", "env_id": "E", "actor_id": "0"}},
                   {"targets": ["10.0.0.1:9000"], "labels": {"role": "driver", "env_id": "E"}}]
    assert json.loads(d.http_sd()[0]) == doc
    mtime = d.path.stat().st_mtime_ns
    d.set("driver", Target("10.0.0.1", 9000, {"role": "driver", "env_id": "E"}))  # unchanged: not rewritten
    assert d.path.stat().st_mtime_ns == mtime
    d.discard("actor-0")
    assert [g["targets"] for g in json.loads(d.path.read_text())] == [["10.0.0.1:9000"]]
    d.discard("driver")
    d.set("learner", Target("::1", 5, {"role": "learner"}))
    assert json.loads(d.path.read_text())[0]["targets"] == ["[::1]:5"]
    assert [p.name for p in tmp_path.iterdir()] == ["run-a.json"]  # no temp files left behind
    d.close()
    assert not d.path.exists()


def test_replay_metrics_read_real_stats(redis_server) -> None:
    import numpy as np

    from ami.memory.config import ReplayConfig
    from ami.memory.core import Segment, SegmentMeta
    from ami.memory.local import LocalReplay
    from ami.memory.redis_replay import RedisReplay

    def seg(i: int) -> Segment:
        n = 10
        data = {"obs": np.zeros((n, 3), np.float32), "action": np.zeros((n, 1), np.float32),
                "reward": np.zeros(n, np.float32), "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool),
                "next_obs": np.zeros((n, 3), np.float32)}
        return Segment(data, SegmentMeta(actor_id=0, env_id="E", episode_id=i, first_step=0, policy_version=0))

    redis = RedisReplay(ReplayConfig(capacity_transitions=25, namespace="test:obs", seed=0), redis_server.url)
    for replay in (LocalReplay(25, seed=0), redis):
        for i in range(4):
            replay.add(seg(i))
        replay.flush()
        replay.sample(6, 2)
        ms = MetricSet(Identity("driver", "E"))
        rm = ReplayMetrics(ms)
        rm.observe_server(replay.stats())
        rm.observe_client(replay.stats())
        assert value(ms, "ami_replay_inserts_total") == 40
        assert value(ms, "ami_replay_evicted_transitions_total") == 20
        assert value(ms, "ami_replay_size_transitions") == 20
        assert value(ms, "ami_replay_capacity_transitions") == 25
        assert value(ms, "ami_replay_samples_total") == 6
        assert value(ms, "ami_replay_samples_per_insert") == pytest.approx(6 / 40)
        assert value(ms, "ami_replay_dropped_transitions_total") == 0
        rm.observe_server(replay.stats())  # cumulative totals: a second look adds nothing
        assert value(ms, "ami_replay_inserts_total") == 40
    redis.clear()
    redis.close()


def test_counter_totals_survive_a_source_restart() -> None:
    ms = MetricSet(Identity("actor", "E", 1))
    ms.set_total("ami_replay_write_retries_total", 5)
    ms.set_total("ami_replay_write_retries_total", 7)
    ms.set_total("ami_replay_write_retries_total", 2)  # the source restarted from zero: +2, never negative
    assert value(ms, "ami_replay_write_retries_total") == 9


def test_learner_metrics_read_agent_update_and_collapse_shows() -> None:
    """Every loss term of Updater.step() lands in ami_learner_loss, and the representation-health gauges (per-dim
    embedding std) fall when the anti-collapse (VICReg) terms are off. (Effective rank is scale-free: a JEPA
    that shrinks every dimension together keeps it, so the std gauges are the collapse alarm.)"""
    from tests.agent.helpers import batch_dict, random_replay, tiny_agent

    pred_only = dict(cost_weight=0.0, done_weight=0.0, target="grad")
    data = random_replay("Pendulum-v1", tiny_agent("Pendulum-v1"), 1500)
    health = {}
    for vicreg in (True, False):
        weights = dict(var_weight=1.0, cov_weight=0.04) if vicreg else dict(var_weight=0.0, cov_weight=0.0)
        agent = tiny_agent("Pendulum-v1", seed=1, cost=dict(critic_weight=0.0), optim=dict(lr=1e-3), **pred_only,
                           **weights)
        ms = MetricSet(Identity("learner", "Pendulum-v1"))
        lm = LearnerMetrics(ms)
        m = {}
        updater = Updater(agent)
        for _ in range(200):  # the latest of each metric: health is measured every agent.optim.health_every updates
            m.update(updater.step(batch_dict(data, 128, 3))[0])
        lm.update(m, n=200, seconds=2.0)
        terms = [t for t in LOSS_TERMS if t != "align"]  # (align: only with latent actions, a pretrained start)
        assert {f"loss_{t}" for t in terms} <= set(m) and "loss_align" not in m
        for t in terms:
            assert value(ms, "ami_learner_loss", term=t) == pytest.approx(m[f"loss_{t}"])
        assert value(ms, "ami_learner_updates_total") == 200
        health[vicreg] = (value(ms, "ami_learner_embedding_std_min"), value(ms, "ami_learner_embedding_std_mean"))
    assert health[False][0] < 0.5 * health[True][0], health
    assert health[False][1] < 0.5 * health[True][1], health


def test_goal_runs_report_level2_losses_and_success_rate() -> None:
    """A hierarchical goal agent's update lands in ami_learner_level2_loss; a goal env's evaluation in
    ami_driver_eval_success_rate (the ami-goals dashboard, which a Pendulum run cannot fill)."""
    from ami.actors.runner import evaluate
    from ami.telemetry.metrics import LEVEL2_TERMS, DriverMetrics
    from tests.goal.helpers import OPEN_ROOM, goal_agent, sticky_replay

    agent = goal_agent("ami/TwoRooms-v0", plan_evals=1536, episode_steps=100)
    assert agent.hierarchy is not None
    data = sticky_replay("ami/TwoRooms-v0", agent, 600, seed=0)
    b = data.sample(32, 16)
    m, _ = Updater(agent).step({**b.data, "mask": b.mask, "weights": b.weights})
    lm = LearnerMetrics(MetricSet(Identity("learner", "ami/TwoRooms-v0")))
    lm.update(m, n=1)
    for t in LEVEL2_TERMS:
        assert value(lm.ms, "ami_learner_level2_loss", term=t) == pytest.approx(m[f"l2_loss_{t}"])
    dm = DriverMetrics(MetricSet(Identity("driver", OPEN_ROOM)))
    res = evaluate(OPEN_ROOM, goal_agent(OPEN_ROOM, plan_evals=64, episode_steps=30), 4, seed=0)
    dm.evaluation(res)
    assert value(dm.ms, "ami_driver_eval_success_rate") == pytest.approx(res["eval_success_rate"])
    assert value(dm.ms, "ami_driver_evals_total") == 1
