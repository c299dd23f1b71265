"""The inline backend: one process alternates the episode runner and the learner.

Same runner, learner, replay interface and run-directory contract as the Ray backend; no services needed.
"""

from __future__ import annotations

import dataclasses
import random
import time

import numpy as np
import torch
from tqdm import tqdm

from actors.runner import EpisodeRunner, evaluate
from agent.agent import Agent
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
    runner = EpisodeRunner(r.env_id, agent, runner_cfg, replay.add)
    learner = Learner(agent, replay, cfg.learner)
    run.create()
    env_steps, episodes, wall_before = 0, 0, 0.0
    if resume and run.latest_checkpoint.exists():
        counters = learner.load_checkpoint(run.latest_checkpoint)
        env_steps, episodes = int(counters.get("env_steps", 0)), int(counters.get("episodes", 0))
        wall_before = float(counters.get("wall_seconds", 0.0))
        runner.policy_version = learner.version
    else:
        run.write_config(to_dict(cfg, agent_cfg))
    resumed_at = env_steps
    t0 = time.perf_counter()
    last_eval: dict = {}
    last_eval_at = -1
    recent: list[float] = []
    next_log = (env_steps // r.log_every + 1) * r.log_every
    next_eval = (env_steps // r.eval_every + 1) * r.eval_every
    bar = tqdm(total=r.steps, initial=env_steps, disable=not progress, unit="step", dynamic_ncols=True)

    def wall() -> float:
        return wall_before + time.perf_counter() - t0

    def do_eval() -> dict:
        nonlocal last_eval_at
        last_eval_at = env_steps
        return evaluate(r.env_id, agent, r.eval_episodes, seed=r.seed + 10_000 + env_steps)

    try:
        while env_steps < r.steps:
            random_phase = env_steps < cfg.learner.warmup_steps and resumed_at == 0
            env_steps += runner.step(1, random=random_phase)
            bar.update(r.envs_per_actor)
            for ret, _ in runner.episodes:
                recent.append(ret)
                episodes += 1
            runner.episodes.clear()
            due = learner.due(env_steps)
            if due and replay.size() >= cfg.learner.batch_size:
                if learner.train(due):
                    runner.policy_version = learner.version
            if env_steps >= next_eval:
                next_eval += r.eval_every
                last_eval = do_eval()
                bar.set_postfix(eval=f"{last_eval['eval_return_mean']:.1f}", upd=learner.updates)
                run.append_metrics({"env_steps": env_steps, "updates": learner.updates, "wall_seconds": wall(),
                                    "episodes": episodes, **last_eval})
            if env_steps >= next_log:
                next_log += r.log_every
                line = {"env_steps": env_steps, "updates": learner.updates, "wall_seconds": wall(),
                        "episodes": episodes, "weights_version": learner.version, "replay_size": replay.size()}
                if recent:
                    line["episode_return_mean"] = float(np.mean(recent))
                    recent.clear()
                run.append_metrics({**line, **learner.drain_metrics()})
            ce = cfg.learner.checkpoint_every
            if ce and learner.updates and learner.updates % ce == 0 and due:
                learner.save_checkpoint(run.checkpoints, _counters(env_steps, episodes, wall()))
    except KeyboardInterrupt:
        pass  # stop cleanly: fall through to the final checkpoint and summary
    finally:
        bar.close()
        runner.flush_all()
        runner.close()
    if last_eval_at != env_steps:
        last_eval = do_eval()
        run.append_metrics({"env_steps": env_steps, "updates": learner.updates, "wall_seconds": wall(),
                            "episodes": episodes, **last_eval})
    learner.save_checkpoint(run.checkpoints, _counters(env_steps, episodes, wall()))
    summary = {"env_steps": env_steps, "updates": learner.updates, "wall_seconds": wall(),
               "eval_return_mean": last_eval["eval_return_mean"], "eval_return_std": last_eval["eval_return_std"],
               "weights_version": learner.version, "env_id": r.env_id, "seed": r.seed, "episodes": episodes,
               "backend": "inline"}
    if "eval_success_rate" in last_eval:
        summary["eval_success_rate"] = last_eval["eval_success_rate"]
    run.write_summary(summary)
    return summary


def _counters(env_steps: int, episodes: int, wall: float) -> dict:
    return {"env_steps": env_steps, "episodes": episodes, "wall_seconds": wall}
