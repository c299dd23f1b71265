"""H-JEPA: level 2 predicts k steps ahead better than chaining level 1 k times (held-out data), and the
two-level planner, given a known model, sets sub-goals on the way to the goal and reaches the first one."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.agent.hierarchy import distance
from ami.agent.perception import column, obs_to_tensor
from ami.agent.short_term import ShortTermMemory
from tests.goal.helpers import goal_agent, sticky_replay, train

K = 4


@torch.no_grad()
def k_step_errors(agent: Agent, batch) -> tuple[float, float]:
    """Mean level-2 space error of (a) level 2's k-step prediction and (b) k chained level-1 predictions
    re-encoded by level 2, against level 2's encoding of the true next window."""
    wm, l2 = agent.world_model, agent.hierarchy
    obs = obs_to_tensor(column(batch.data, "obs"), "cpu")["observation"]
    nxt = obs_to_tensor(column(batch.data, "next_obs"), "cpu")["observation"]
    b, w = batch.mask.shape
    act = agent.action.to_model(batch.data["action"], "cpu")
    mask = torch.as_tensor(batch.mask).float()
    real = torch.cat([wm.encode(obs[:, 0])[:, None], wm.encode(nxt.flatten(0, 1)).view(b, w, -1)], 1)
    cur, u, nxt_win, valid = l2.windows(real, act, mask)
    target = l2.encode(nxt_win)
    err2 = distance(l2.predict(l2.encode(cur), u), target)
    acts = act.unfold(1, K, 1).transpose(-1, -2)  # [B, T, k, A]
    s, chain = cur[:, :, -1], []
    for j in range(K):
        s = wm.predict(s, acts[:, :, j])
        chain.append(s)
    err1 = distance(l2.encode(torch.stack(chain, 2)), target)
    n = valid.sum()
    return float((err2 * valid).sum() / n), float((err1 * valid).sum() / n)


def test_level2_beats_chained_level1_on_held_out_windows() -> None:
    torch.set_num_threads(1)
    env_id = "ami/TwoRooms-v0"
    agent = goal_agent(env_id, plan_evals=2048, episode_steps=300, k=K)
    assert agent.hierarchy is not None
    m = train(agent, sticky_replay(env_id, agent, 4000, seed=0), 400, window=2 * K)
    assert m["l2_loss_variance"] < 0.5 and np.isfinite(m["l2_loss_prediction"])
    held_out = sticky_replay(env_id, agent, 1200, seed=1).sample(256, 2 * K)
    level2, chained = k_step_errors(agent, held_out)
    assert level2 < chained, (level2, chained)


class KnownStep(nn.Module):
    """Level-1 predictor of a point in the open plane: s' = s + speed * a."""

    def __init__(self, speed: float):
        super().__init__()
        self.speed = speed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :2] + self.speed * x[..., 2:4]


class LastLatent(nn.Module):
    """Level-2 encoder of a flattened window [.., k*2]: the latest position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., -2:]


class MeanAction(nn.Module):
    """Macro-action of k flattened 2D actions: their mean (a displacement direction)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, 2)).mean(-2)


class KnownMacro(nn.Module):
    """Level-2 predictor's residual (Level2.predict adds S): S' = S + k * speed * u."""

    def __init__(self, reach: float):
        super().__init__()
        self.reach = reach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reach * x[..., 2:4]


def known_agent(speed: float = 0.05) -> Agent:
    box = gym.spaces.Box(-10, 10, (2,), np.float32)
    obs_space = gym.spaces.Dict({"observation": box, "goal": box})
    act = gym.spaces.Box(-1, 1, (2,), np.float32)
    cfg = configure(obs_space, act, "goal", ComputeBudget(plan_evals=2048, episode_steps=300))
    cfg = dataclasses.replace(cfg, world_model=dataclasses.replace(cfg.world_model, latent_dim=2),
                              hierarchy=dataclasses.replace(cfg.hierarchy, latent_dim=2, macro_dim=2,
                                                            replan_every=cfg.hierarchy.k))
    torch.manual_seed(0)
    agent = Agent(obs_space, act, cfg)
    k = cfg.hierarchy.k
    agent.world_model.encoder = nn.Identity()
    agent.world_model.predictor = KnownStep(speed)
    agent.hierarchy.encoder, agent.hierarchy.macro = LastLatent(), MeanAction()
    agent.hierarchy.predictor = KnownMacro(k * speed)
    return agent


def test_two_level_planner_sets_sub_goals_on_the_way_and_reaches_the_first() -> None:
    torch.set_num_threads(1)
    speed = 0.05
    agent = known_agent(speed)
    k = agent.cfg.hierarchy.k
    start, goal = np.zeros(2, np.float32), np.array([3.0, 1.0], np.float32)
    assert np.linalg.norm(goal - start) > 3 * k * speed  # beyond level 1's reach: level 2 must lead
    stm = ShortTermMemory(1)
    pos = start.copy()
    for t in range(k):
        a = agent.act({"observation": pos[None], "goal": goal[None]}, stm, explore=False)
        if t == 0:
            first = stm.level2.subgoal[0].numpy().copy()
            # the level-2 plan's predicted states: the sub-goals ahead
            S, subs = torch.as_tensor(pos)[None], []
            for u in stm.level2.plan[0]:
                S = agent.hierarchy.predict(S, u[None])
                subs.append(S[0].numpy())
        pos = pos + speed * np.clip(a[0], -1, 1)
    subs = np.stack(subs)
    to_goal = np.linalg.norm(subs - goal, axis=1)
    # every sub-goal is closer to the goal than the one before, until one lands at the goal (the plan's tail
    # beyond that point costs nothing to wander and is never executed)
    arrive = int(to_goal.argmin())
    assert to_goal[arrive] < k * speed, to_goal
    assert np.all(np.diff(to_goal[:arrive + 1]) < 0), to_goal
    subs = subs[:arrive + 1]
    line = (goal - start) / np.linalg.norm(goal - start)
    off = np.abs(subs[:, 0] * line[1] - subs[:, 1] * line[0])  # distance from the start-goal line
    assert off.max() < 0.3, off
    assert np.linalg.norm(first - start) > 0.5 * k * speed  # the first sub-goal is a real step ahead
    assert np.linalg.norm(pos - first) < 0.25 * k * speed, (pos, first)  # level 1 got there in k steps
