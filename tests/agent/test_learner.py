"""The learner's sampling pipeline: the next batch is sampled while the current one trains, with exactly the
batches (and their order) a plain loop would draw, and nothing left in flight between calls."""

from __future__ import annotations

import threading

import numpy as np

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace
from ami.learner.learner import Learner, LearnerConfig
from ami.memory.local import LocalReplay
from tests.agent.helpers import tiny_agent


class Recording(LocalReplay):
    """A LocalReplay that remembers the first observations of every batch it hands out, and which thread asked."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.firsts: list[np.ndarray] = []
        self.threads: set[str] = set()

    def sample(self, batch_size, window):
        self.threads.add(threading.current_thread().name)
        b = super().sample(batch_size, window)
        self.firsts.append(b.data["obs"][:, 0].copy())
        return b


def test_prefetch_trains_on_the_same_batches_and_leaves_nothing_in_flight() -> None:
    agent = tiny_agent("Pendulum-v1", seed=0)
    piped, plain = Recording(2000, seed=3), Recording(2000, seed=3)

    def both(segment) -> None:
        piped.add(segment)
        plain.add(segment)

    runner = EpisodeRunner("Pendulum-v1", agent, RunnerConfig(), both, RunnerPlace(num_envs=2, seed=0))
    runner.step(300, random=True)
    runner.flush_all()
    runner.close()
    learner = Learner(agent, piped, LearnerConfig(batch_size=32, snapshot_every=4))
    assert learner.train(5) is True  # 5 updates cross snapshot_every=4
    assert learner.updates == 5 and learner.version == 1
    assert learner._prefetched is None  # nothing sampled ahead once train() returns
    assert piped.stats()["sample_batches"] == 5  # no batch sampled and thrown away
    assert any(t.startswith("ami-sample") for t in piped.threads)  # batches 2-5 came from the sampling thread
    for _ in range(5):
        plain.sample(32, 3)
    assert all(np.array_equal(a, b) for a, b in zip(piped.firsts, plain.firsts, strict=True))
    assert learner.train(1) is False and piped.stats()["sample_batches"] == 6


def test_the_last_updates_wait_out_a_restarting_redis() -> None:
    """LearnerActor.finish's loop: a retryable Redis error is waited out (the soak once ended a run with a
    ConnectionError there), updates go on until none is owed, and the deadline bounds it all."""
    import time

    import redis

    from ami.learner.ray_learner import train_while_owed

    script = [redis.exceptions.ConnectionError("restarting"), 10, TimeoutError(), 10, 0, 99]
    calls = []

    def train_once() -> int:
        calls.append(1)
        step = script[len(calls) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    train_while_owed(train_once, time.perf_counter() + 10, nap_s=0.01)
    assert len(calls) == 5  # stopped at the first 0, after both errors

    def always_down() -> int:
        raise redis.exceptions.ConnectionError("down")

    t0 = time.perf_counter()
    train_while_owed(always_down, t0 + 0.2, nap_s=0.01)
    assert 0.2 <= time.perf_counter() - t0 < 2.0
