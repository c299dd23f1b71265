"""Goal reaching and H-JEPA: reward-free world model from random play, then goal-conditioned planning.

  .venv/bin/python benchmarks/goal_reaching.py two-rooms [--episodes 100] [--steps 20000] [--updates 2000]
  .venv/bin/python benchmarks/goal_reaching.py maze [--episodes 50] [--steps 60000] [--updates 4000]
  add --pixels for the 64x64 image variants, --device cuda on a GPU, --planners to pick planners

One world model (level 1 + level 2, trained jointly on random play whose actions are held 8 steps; no reward)
serves every planner, so planners are compared on the same weights. Success over N episodes played in parallel
batches of 25 (seconds per episode = wall time / N, CPU, one torch thread). World-model evaluations are counted
per decision at both levels (each predictor call on each candidate); flat planners that follow the hierarchical
one get the evaluations per decision it really used (its macro proposals included). two-rooms defaults to the
configurator's choice; maze runs hierarchical, flat (the configurator's flat horizon) and flat-long (flat with
level 2's look-ahead, k x level-2 horizon steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import gymnasium as gym
import numpy as np
import torch

from ami.actors.runner import EpisodeRunner, RunnerConfig, RunnerPlace, evaluate
from ami.agent.agent import Agent
from ami.agent.configurator import HIERARCHY_MIN_EPISODE, ComputeBudget, configure, plan_config
from ami.agent.update import Updater
from ami.envs import register_envs
from ami.memory.local import LocalReplay


def make_agent(env_id: str, plan_evals: int, episode_steps: int, hierarchical: bool | None = None,
               seed: int = 0, device: str = "cpu", level2_horizon: int = 0, value_weight: float = -1.0,
               level2: dict | None = None) -> Agent:
    """The configurator's goal-task agent; `hierarchical` overrides its flat/hierarchical choice."""
    register_envs()
    torch.manual_seed(seed)
    env = gym.make(env_id)
    budget = ComputeBudget(plan_evals=plan_evals, episode_steps=episode_steps, device=device)
    cfg = configure(env.observation_space, env.action_space, "goal", budget)
    if hierarchical is not None and hierarchical != cfg.hierarchy.enabled:
        # the other mode at the same budget: ask the configurator as if the episodes were long / short
        steps = max(episode_steps, HIERARCHY_MIN_EPISODE) if hierarchical else HIERARCHY_MIN_EPISODE - 1
        other = ComputeBudget(plan_evals=plan_evals, episode_steps=steps, device=device)
        cfg = configure(env.observation_space, env.action_space, "goal", other)
    if value_weight >= 0:
        cfg = dataclasses.replace(cfg, hierarchy=dataclasses.replace(cfg.hierarchy, value_weight=value_weight))
    if level2:
        cfg = dataclasses.replace(cfg, hierarchy=dataclasses.replace(cfg.hierarchy, **level2))
    if level2_horizon:
        h = cfg.hierarchy
        cfg = dataclasses.replace(cfg, hierarchy=dataclasses.replace(
            h, planner=dataclasses.replace(h.planner, horizon=level2_horizon)))
    small = dict(hidden=64, latent_dim=16)  # tiny nets: the 2D tasks need no more, and CPU time is scarce
    cfg = dataclasses.replace(cfg, world_model=dataclasses.replace(cfg.world_model, **small),
                              encoder=dataclasses.replace(cfg.encoder, hidden=64))
    return Agent(env.observation_space, env.action_space, cfg, device=device)


def agent_space(env_id: str) -> gym.Space:
    return gym.make(env_id).action_space


def collect(env_id: str, agent: Agent, steps: int, seed: int = 0, num_envs: int = 8, repeat: int = 8) -> LocalReplay:
    """Reward-free exploration data: uniformly random actions, each held for `repeat` steps."""
    replay = LocalReplay(steps + 1000, seed=seed)
    runner = EpisodeRunner(env_id, agent, RunnerConfig(random_repeat=repeat), replay.add,
                           RunnerPlace(num_envs=num_envs, seed=seed))
    runner.step(steps // num_envs, random=True)
    runner.flush_all()
    runner.close()
    return replay


BATCH = 128
"""Windows per update of the small goal agents."""


def train(agent: Agent, replay: LocalReplay, updates: int, window: int = 8) -> dict[str, float]:
    m: dict[str, float] = {}
    updater = Updater(agent)
    for _ in range(updates):
        b = replay.sample(BATCH, window)
        m, _ = updater.step({**b.data, "mask": b.mask, "weights": b.weights})
    return m


def play(env_id: str, agent: Agent, episodes: int, seed: int, batch: int = 25) -> dict[str, float]:
    """Success rate, wall seconds per episode (batches of parallel episodes) and evaluations per decision."""
    succ, t0 = [], time.perf_counter()
    agent.plan_counter.clear()
    if agent.two_level is not None:
        agent.two_level.counter.clear()
    calls = 0
    act = agent.act

    def counted(obs, stm, explore=True):
        nonlocal calls
        calls += len(next(iter(obs.values())))  # one decision per env per step
        return act(obs, stm, explore)

    agent.act = counted
    for i in range(0, episodes, batch):
        n = min(batch, episodes - i)
        out = evaluate(env_id, agent, n, seed + i)
        succ.append(out["eval_success_rate"] * n)
    del agent.act
    wall = time.perf_counter() - t0
    counts = dict(agent.plan_counter)
    if agent.two_level is not None:
        counts = {k: counts.get(k, 0) + v for k, v in agent.two_level.counter.items()}
    total = int(sum(counts.values()))
    return {"success_rate": float(np.sum(succ) / episodes), "seconds_per_episode": wall / episodes,
            "wall_seconds": wall, "decisions": calls, "model_evals_per_decision": round(total / max(calls, 1)),
            **{f"evals_{k}_per_decision": round(v / max(calls, 1)) for k, v in counts.items()}}


def main() -> None:
    torch.set_num_threads(1)
    p = argparse.ArgumentParser()
    p.add_argument("task", choices=["two-rooms", "maze"])
    p.add_argument("--episodes", type=int, default=None)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--updates", type=int, default=3000)
    p.add_argument("--plan-evals", type=int, default=1536)
    p.add_argument("--pixels", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--level2-horizon", type=int, default=0, help="override level 2's planning horizon")
    p.add_argument("--value-weight", type=float, default=-1.0,
                   help="override hierarchy.value_weight (level 2's goal-conditioned critic; 0 = off)")
    p.add_argument("--save", default="", help="write the trained weights here (torch.save of a state_dict)")
    p.add_argument("--load", default="", help="skip collecting and training: load these weights")
    p.add_argument("--level2", nargs="*", default=[], metavar="KEY=FLOAT",
                   help="override numeric hierarchy.KEY fields, e.g. value_tau=0.05")
    p.add_argument("--planners", default=None, help="comma list of auto|flat|flat-long|hierarchical (default: "
                   "two-rooms auto; maze hierarchical,flat,flat-long: flat ones get the evaluations hierarchical used)")
    a = p.parse_args()
    level2 = {k: float(v) for k, v in (x.split("=", 1) for x in a.level2)}
    pix = "Pixels" if a.pixels else ""
    if a.task == "two-rooms":
        env_id, planners, episodes, limit = f"ami/TwoRooms{pix}-v0", "auto", a.episodes or 100, 100
    else:
        env_id, planners, episodes, limit = (f"ami/FourRooms{pix}-v0", "hierarchical,flat,flat-long",
                                             a.episodes or 50, 300)
    pick = {"auto": None, "flat": False, "flat-long": False, "hierarchical": True}
    names = (a.planners or planners).split(",")
    modes = [pick[x] for x in names]
    # one world model for every planner: train with level 2 on (when any mode uses it), then every planner acts
    # on the same level-1 weights, so the comparison is between planners alone
    trained = make_agent(env_id, a.plan_evals, limit, True if True in modes else modes[0], a.seed, a.device,
                         a.level2_horizon, a.value_weight, level2)
    explore_id = env_id.replace("-v0", "Explore-v0") if a.task == "maze" else env_id  # maze: starts anywhere
    t0 = time.perf_counter()
    collect_s = train_s = 0.0
    m: dict[str, float] = {}
    if a.load:
        trained.load_state_dict(torch.load(a.load, weights_only=True))
    else:
        replay = collect(explore_id, trained, a.steps, a.seed)
        collect_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        m = train(trained, replay, a.updates, window=2 * max(trained.cfg.hierarchy.k, 4))
        train_s = time.perf_counter() - t0
    if a.save:
        torch.save(trained.state_dict(), a.save)
    budget = a.plan_evals
    for name in names:
        agent = make_agent(env_id, budget, limit, pick[name], a.seed, a.device, a.level2_horizon, a.value_weight,
                           level2)
        agent.load_state_dict(trained.state_dict(), strict=False)  # flat agents have no level 2
        if name == "flat-long":  # flat, looking as far ahead as level 2 does, at the same evaluations
            h = trained.cfg.hierarchy
            long = plan_config(agent_space(env_id), budget, horizon=h.k * h.planner.horizon)
            agent.set_planner(dataclasses.replace(long, policy_samples=0, explore_std=0.3))
        res = play(env_id, agent, episodes, seed=10_000 + a.seed)
        if name == "hierarchical":  # flat planners after it get what it really used (proposals included)
            budget = res["model_evals_per_decision"]
        kind = name if name != "auto" else ("hierarchical" if agent.cfg.hierarchy.enabled else "flat")
        print(json.dumps({"env": env_id, "planner": kind, "episodes": episodes, "random_steps": a.steps,
                          "collect_seconds": round(collect_s, 1), "updates": a.updates,
                          "train_seconds": round(train_s, 1), "plan_evals": a.plan_evals,
                          **{k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()},
                          "loss_prediction": round(m.get("loss_prediction", 0.0), 5),
                          "l2_loss_prediction": round(m.get("l2_loss_prediction", 0.0), 5),
                          "l2_value_mean": round(m.get("l2_value_mean", 0.0), 3)}), flush=True)

if __name__ == "__main__":
    main()
