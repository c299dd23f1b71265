"""The inline backend: one process alternates the episode runner and the learner (no services needed).

The driver loop (cluster/loop.py) is the Ray backend's; this backend's `step()` is one vector step of the runner
and the updates the replay ratio then owes.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np
import torch

from ami.actors.runner import EpisodeRunner, RunnerPlace, TimedAgent, evaluate, runner_seed
from ami.agent.agent import Agent
from ami.agent.pretrain import load_pretrained, pretrained_from_bytes
from ami.cluster.bookkeeping import RunBook
from ami.cluster.config import TrainConfig, env_spec
from ami.cluster.envinfo import EnvInfo
from ami.cluster.inline_metrics import InlineMetrics
from ami.cluster.loop import drive
from ami.cluster.rundir import RunDir
from ami.learner.learner import Learner, array_tree, checkpoint_state
from ami.learner.pacing import vector_steps_left
from ami.memory.local import LocalReplay


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells it, else every core)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_inline(cfg: TrainConfig, agent_cfg, info: EnvInfo, run: RunDir, record: dict | None = None,
                 progress: bool = True, metrics_port: int | None = None, init: bytes | None = None) -> dict:
    """Train for cfg.run.steps env steps; writes the run directory (`record`: config.yaml of a new run, None:
    resume from its checkpoint) and returns the summary. Exports the same driver, actor and learner metrics as a
    Ray run (the driver's endpoint on `metrics_port` when given)."""
    r = cfg.run
    torch.set_num_threads(r.torch_threads or usable_cores())
    found = run.read_checkpoint(checkpoint_state) if record is None else None
    state = found[1] if found else None
    run.create()
    book = RunBook(cfg, run, state["counters"] if state else None, backend="inline")
    seed_everything(runner_seed(r.seed, 0, book.env_steps))  # a resumed run draws new episodes, noise and batches
    backend = InlineBackend(cfg, agent_cfg, info, run, book, state, metrics_port, init)
    try:  # endpoints down and the run's discovery file removed however the run ends
        return drive(cfg, run, book, backend, record, progress)
    finally:
        backend.obs.close()


class InlineBackend:
    """The runner, the learner and a local replay in this process (cluster.loop.Backend)."""

    live = 1
    learner_up = True

    def __init__(self, cfg: TrainConfig, agent_cfg, info: EnvInfo, run: RunDir, book: RunBook, state: dict | None,
                 metrics_port: int | None, init: bytes | None = None):
        r = cfg.run
        self.cfg = cfg
        self.agent = Agent(info.observation_space, info.action_space, agent_cfg, device=r.device)
        if init is not None and not state:  # a pretraining run's world model (ami train --init-from)
            load_pretrained(self.agent, pretrained_from_bytes(init))
        seed = runner_seed(r.seed, 0, book.env_steps)
        self.replay = LocalReplay(r.replay_capacity, seed=seed)
        self.obs = InlineMetrics(run.path.name, r.env_id, metrics_port)
        self.runner = EpisodeRunner(env_spec(r, r.explore_env_id), TimedAgent(self.agent, self.obs.actor),
                                    cfg.runner, self._sink, RunnerPlace(num_envs=r.envs_per_actor, seed=seed))
        self.learner = Learner(self.agent, self.replay, cfg.learner)
        if state:
            self.learner.restore(state)
            if "replay" in state:  # (checkpoints of older commits hold no replay: such a run starts it empty)
                self.replay.load(array_tree(state["replay"]))
            self.runner.policy_version = self.learner.version
        self._steps = book.env_steps
        self.fresh = state is None  # random play during warm-up (a resumed run has had its own)
        self._evals: list[tuple[dict, int, int]] = []

    def _sink(self, segment) -> None:
        self.replay.add(segment)
        self.obs.actor.segment()

    # ----- progress -----------------------------------------------------------------------------------------
    @property
    def env_steps(self) -> int:
        return self._steps

    @property
    def updates(self) -> int:
        return self.learner.updates

    @property
    def version(self) -> int:
        return self.learner.version

    def step(self) -> bool:
        m = self.runner.num_envs
        if not vector_steps_left(self._steps, self.cfg.run.steps, m):
            return False
        self._steps += self.runner.step(1, random=self.fresh and self.cfg.learner.warming_up(self._steps))
        self.obs.stepped(m, self.runner.episodes, self.runner.policy_version, self.learner.version)
        due = self.learner.due(self._steps)
        if due and self.replay.size() >= self.cfg.learner.batch_size:
            t0 = time.perf_counter()
            published = self.learner.train(due)
            self.obs.trained(self.learner.latest, due, time.perf_counter() - t0,
                             self.learner.version if published else None)
            self.runner.policy_version = self.learner.version
        return True

    def returns(self) -> list[float]:
        out = [ret for ret, _ in self.runner.episodes]
        self.runner.episodes.clear()
        return out

    # ----- evaluation ---------------------------------------------------------------------------------------
    def can_evaluate(self) -> bool:
        return True

    def start_eval(self, seed: int) -> None:
        self._evals.append((self.evaluate_now(seed), self._steps, self.learner.updates))

    def evaluations(self, block: bool = False) -> list[tuple[dict, int, int]]:
        out, self._evals = self._evals, []
        return out

    def evaluate_now(self, seed: int) -> dict:
        return evaluate(env_spec(self.cfg.run), self.agent, self.cfg.run.eval_episodes, seed=seed)

    # ----- the rest of the Backend protocol ------------------------------------------------------------------
    def checkpoint(self, counters: dict) -> bytes:
        # the replay goes in too: a resumed run trains on the data it had, as a Ray run's Redis keeps it
        data = self.learner.checkpoint(counters, {"replay": self.replay.state()})
        self.obs.learner.checkpoint_saved()
        return data

    def replay_size(self) -> int:
        return self.replay.size()

    def replay_stats(self) -> dict:
        return self.replay.stats()

    def log_extras(self) -> dict:
        return self.learner.drain_metrics()

    def postfix(self) -> dict:
        return {}

    def finish(self, interrupted: bool) -> None:
        self.runner.flush_all()
        self.runner.close()

    def extras(self, interrupted: bool) -> dict:
        return {"interrupted": interrupted}
