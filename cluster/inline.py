"""The inline backend: one process alternates the episode runner and the learner.

Same runner, learner, replay interface and run-directory bookkeeping (cluster.bookkeeping) as the Ray backend;
no services needed.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import torch
from tqdm import tqdm

from actors.runner import EpisodeRunner, evaluate
from agent.agent import Agent
from cluster.bookkeeping import RunBook
from cluster.config import TrainConfig, resolve_agent, to_dict
from cluster.envinfo import EnvInfo
from cluster.rundir import RunDir
from learner.learner import Learner
from memory.local import LocalReplay


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_inline(cfg: TrainConfig, info: EnvInfo, run: RunDir, resume: bool = False,
                 progress: bool = True) -> dict:
    """Train for cfg.run.steps env steps; writes the run directory and returns the summary."""
    r = cfg.run
    torch.set_num_threads(r.torch_threads)
    seed_everything(r.seed)
    agent_cfg = resolve_agent(cfg, info.observation_space, info.action_space, info.max_episode_steps)
    agent = Agent(info.observation_space, info.action_space, agent_cfg, device=r.device)
    replay = LocalReplay(r.replay_capacity, seed=r.seed)
    runner_cfg = dataclasses.replace(cfg.runner, num_envs=r.envs_per_actor, seed=r.seed)
    runner = EpisodeRunner(r.explore_env_id or r.env_id, agent, runner_cfg, replay.add)
    learner = Learner(agent, replay, cfg.learner)
    run.create()
    counters = None
    if resume and run.latest_checkpoint.exists():
        counters = learner.load_checkpoint(run.latest_checkpoint)
        runner.policy_version = learner.version
    else:
        run.write_config(to_dict(cfg, agent_cfg))
    book = RunBook(cfg, run, counters, backend="inline")
    bar = tqdm(total=r.steps, initial=book.env_steps, disable=not progress, unit="step", dynamic_ncols=True)

    def do_eval() -> None:
        res = evaluate(r.env_id, agent, r.eval_episodes, seed=r.seed + 10_000 + book.env_steps)
        book.eval_line(res, learner.updates)

    try:
        while book.env_steps < r.steps:
            random_phase = book.env_steps < cfg.learner.warmup_steps and book.resumed_at == 0
            book.env_steps += runner.step(1, random=random_phase)
            bar.update(r.envs_per_actor)
            book.add_episodes(ret for ret, _ in runner.episodes)
            runner.episodes.clear()
            due = learner.due(book.env_steps)
            if due and replay.size() >= cfg.learner.batch_size:
                if learner.train(due):
                    runner.policy_version = learner.version
            if book.eval_due():
                do_eval()
                bar.set_postfix(eval=f"{book.last_eval['eval_return_mean']:.1f}", upd=learner.updates)
            if book.log_due():
                book.log_line(learner.updates, learner.version, replay.size(), learner.drain_metrics())
            ce = cfg.learner.checkpoint_every
            if ce and learner.updates and learner.updates % ce == 0 and due:
                learner.save_checkpoint(run.checkpoints, book.counters())
    except KeyboardInterrupt:
        pass  # stop cleanly: fall through to the final checkpoint and summary
    finally:
        bar.close()
        runner.flush_all()
        runner.close()
    if book.needs_final_eval():
        do_eval()
    learner.save_checkpoint(run.checkpoints, book.counters())
    return book.summary(learner.updates, learner.version)
