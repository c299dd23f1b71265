"""The inline backend: one process alternates the episode runner and the learner.

Same runner, learner, replay interface and run-directory bookkeeping (cluster.bookkeeping) as the Ray backend;
no services needed.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time

import numpy as np
import torch
from ami.actors.runner import EpisodeRunner, TimedAgent, evaluate
from ami.agent.agent import Agent
from ami.cluster.bookkeeping import RunBook
from ami.cluster.config import TrainConfig, env_spec, resolve_agent, to_dict
from ami.cluster.envinfo import EnvInfo
from ami.cluster.inline_metrics import InlineMetrics
from ami.cluster.rundir import RunDir
from ami.learner.learner import Learner
from ami.memory.local import LocalReplay
from tqdm import tqdm


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the OS tells it, else every core)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_inline(cfg: TrainConfig, info: EnvInfo, run: RunDir, resume: bool = False,
                 progress: bool = True, metrics_port: int | None = None) -> dict:
    """Train for cfg.run.steps env steps; writes the run directory and returns the summary. Exports the same
    driver, actor and learner metrics as a Ray run (the driver's endpoint on `metrics_port` when given)."""
    r = cfg.run
    torch.set_num_threads(r.torch_threads or usable_cores())
    seed_everything(r.seed)
    agent_cfg = resolve_agent(cfg, info.observation_space, info.action_space, info.max_episode_steps,
                              info.partially_observed)
    agent = Agent(info.observation_space, info.action_space, agent_cfg, device=r.device)
    replay = LocalReplay(r.replay_capacity, seed=r.seed)
    runner_cfg = dataclasses.replace(cfg.runner, num_envs=r.envs_per_actor, seed=r.seed)
    run.create()
    obs = InlineMetrics(run.path.name, r.env_id, metrics_port)

    def sink(segment) -> None:
        replay.add(segment)
        obs.actor.segment()

    runner = EpisodeRunner(env_spec(r, r.explore_env_id), TimedAgent(agent, obs.actor), runner_cfg, sink)
    learner = Learner(agent, replay, cfg.learner)
    counters = None
    if resume and run.latest_checkpoint.exists():
        counters = learner.load_checkpoint(run.latest_checkpoint)
        runner.policy_version = learner.version
    else:
        run.write_config(to_dict(cfg, agent_cfg))
    book = RunBook(cfg, run, counters, backend="inline")
    bar = tqdm(total=r.steps, initial=book.env_steps, disable=not progress, unit="step", dynamic_ncols=True)

    def do_eval() -> None:
        res = evaluate(env_spec(r), agent, r.eval_episodes, seed=r.seed + 10_000 + book.env_steps)
        book.eval_line(res, learner.updates)
        obs.driver.evaluation(res)

    t_obs, upd_obs = time.perf_counter(), learner.updates
    try:  # endpoints down and the run's discovery file removed however the run ends
        try:
            while book.env_steps < r.steps:
                random_phase = book.env_steps < cfg.learner.warmup_steps and book.resumed_at == 0
                book.env_steps += runner.step(1, random=random_phase)
                bar.update(r.envs_per_actor)
                book.add_episodes(ret for ret, _ in runner.episodes)
                obs.stepped(r.envs_per_actor, runner.episodes, runner.policy_version, learner.version)
                runner.episodes.clear()
                due = learner.due(book.env_steps)
                if due and replay.size() >= cfg.learner.batch_size:
                    t0 = time.perf_counter()
                    published = learner.train(due)
                    dt = time.perf_counter() - t0
                    obs.trained(learner.last_metrics, due, dt, learner.version if published else None)
                    if published:
                        runner.policy_version = learner.version
                now = time.perf_counter()
                if now - t_obs >= 1.0:  # the driver's gauges, once a second (updates per wall second, as Ray's)
                    ups, t_obs, upd_obs = (learner.updates - upd_obs) / (now - t_obs), now, learner.updates
                    obs.progress(book, r.steps, ups, replay.stats())
                if book.eval_due():
                    do_eval()
                    bar.set_postfix(eval=f"{book.last_eval['eval_return_mean']:.1f}", upd=learner.updates)
                if book.log_due():
                    book.log_line(learner.updates, learner.version, replay.size(), learner.drain_metrics())
                ce = cfg.learner.checkpoint_every
                if ce and learner.updates and learner.updates % ce == 0 and due:
                    learner.save_checkpoint(run.checkpoints, book.counters())
                    obs.learner.checkpoint_saved()
        except KeyboardInterrupt:
            pass  # stop cleanly: fall through to the final checkpoint and summary
        finally:
            bar.close()
            runner.flush_all()
            runner.close()
        if book.needs_final_eval():
            do_eval()
        learner.save_checkpoint(run.checkpoints, book.counters())
    finally:
        obs.close()
    return book.summary(learner.updates, learner.version)
