"""The episode runner: a gymnasium vector env + the agent + short-term memory -> segments.

Shared by the inline trainer and the Ray actor. Autoreset is SAME_STEP, so the observation returned with a
finished episode's last step is already the next episode's first; the true last observation comes from
info["final_obs"] and is what the stored transition holds. Segments never cross an episode: a segment is cut
after T steps or at an episode end, whichever comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ami.agent.agent import Agent
from ami.agent.perception import flatten_columns
from ami.agent.short_term import ShortTermMemory
from ami.envs.make import EnvSpec, as_spec, make_vector_env
from ami.memory.core import Segment, SegmentMeta


@dataclass(frozen=True)
class RunnerConfig:
    """How an actor steps its envs and cuts segments (the user's keys, `runner.*`)."""

    segment_length: int = 64
    """Steps per segment, T (shorter at episode ends)."""
    random_repeat: int = 1
    """Random exploration holds each sampled action for this many steps (>1: temporally correlated play that
    travels further, e.g. the multi-step moves a goal task's level-2 model must learn)."""
    explore: str = "plan"
    """'plan': after warm-up the agent plans (with exploration noise); 'random': every step is random play (the
    reward-free exploration a goal task learns its world model from; only evaluation plans)."""


@dataclass(frozen=True)
class RunnerPlace:
    """Where one runner sits in its run: assigned by the driver (run.envs_per_actor, the run's seed, the actor's
    id and incarnation), never a user's key."""

    num_envs: int = 1
    """Envs stepped together in one vector env (planning is batched over them)."""
    seed: int = 0
    """Seed of the envs' first reset and of random exploration."""
    actor_id: int = 0
    """Id stamped on every segment."""
    first_episode: int = 0
    """Episode id of env 0's first episode (env i takes first_episode + i, then + M each): a restarted or resumed
    actor starts past every id its earlier incarnations wrote, so (actor_id, episode_id) never repeats."""


def runner_seed(run_seed: int, actor_id: int, env_steps: int) -> int:
    """The seed of a runner's envs and exploration: the run's, moved by the actor's id and by the env steps the run
    has already taken, so a restarted or resumed runner never replays the episodes an earlier one played (both
    backends call it; a fresh run's actor 0 keeps the run's seed)."""
    return run_seed + 7919 * actor_id + env_steps


class EpisodeRunner:
    """Steps M envs with the agent, buffers per-env steps, and emits finished segments to `sink`."""

    def __init__(self, env: str | EnvSpec, agent: Agent, cfg: RunnerConfig, sink: Callable[[Segment], None],
                 place: RunnerPlace = RunnerPlace()):
        self.env_id, self.agent, self.cfg, self.sink, self.place = as_spec(env).id, agent, cfg, sink, place
        m = self.num_envs = place.num_envs
        self.envs = make_vector_env(env, m)
        self.envs.action_space.seed(place.seed)
        self.obs, _ = self.envs.reset(seed=place.seed)
        self.stm = ShortTermMemory(m)
        self.policy_version = 0
        self._buf: list[list[dict]] = [[] for _ in range(m)]
        self._first_step = np.zeros(m, dtype=np.int64)
        self._episode = place.first_episode + np.arange(m, dtype=np.int64)  # env i: first + i, then + M each
        self._ret = np.zeros(m)
        self._len = np.zeros(m, dtype=np.int64)
        self.env_steps = 0
        self._held, self._random_steps = None, 0  # random exploration's current action (random_repeat)
        self.episodes: list[tuple[float, int]] = []  # finished (return, length), drained by the caller

    def step(self, n: int = 1, random: bool = False) -> int:
        """Run n vector steps (random actions when `random`); returns env steps taken."""
        random = random or self.cfg.explore == "random"
        for _ in range(n):
            past = self.agent.belief_columns(self.obs, self.stm)  # the history this step is taken from
            if random:
                if self._held is None or self._random_steps % self.cfg.random_repeat == 0:
                    self._held = self.envs.action_space.sample()
                self._random_steps += 1
                action = self._held
                self.agent.observe(self.obs, action, self.stm)
            else:
                action = self.agent.act(self.obs, self.stm, explore=True)
            nxt, reward, term, trunc, info = self.envs.step(action)
            done = np.logical_or(term, trunc)
            final = nxt
            if done.any():
                final = _with_final_obs(nxt, info, done)
            for i in range(self.num_envs):
                self._buf[i].append({**flatten_columns("obs", _row(self.obs, i)), "action": np.asarray(action[i]),
                                     "reward": np.float32(reward[i]), "terminated": bool(term[i]),
                                     "truncated": bool(trunc[i]), **flatten_columns("next_obs", _row(final, i)),
                                     **{k: v[i] for k, v in past.items()}})
                self._ret[i] += reward[i]
                self._len[i] += 1
                if done[i] or len(self._buf[i]) >= self.cfg.segment_length:
                    self._flush(i)
                if done[i]:
                    self.episodes.append((float(self._ret[i]), int(self._len[i])))
                    self._ret[i], self._len[i] = 0.0, 0
                    self._episode[i] += self.num_envs
                    self._first_step[i] = 0
            if done.any():
                self.stm.reset(done)
            self.obs = nxt
            self.env_steps += self.num_envs
        return n * self.num_envs

    def _flush(self, i: int) -> None:
        rows = self._buf[i]
        if not rows:
            return
        data = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
        meta = SegmentMeta(actor_id=self.place.actor_id, env_id=self.env_id, episode_id=int(self._episode[i]),
                           first_step=int(self._first_step[i]), policy_version=self.policy_version)
        self._first_step[i] += len(rows)
        self._buf[i] = []
        self.sink(Segment(data, meta))

    def flush_all(self) -> None:
        """Emit every partial segment (at shutdown: nothing stepped is left unstored)."""
        for i in range(self.num_envs):
            self._flush(i)

    def close(self) -> None:
        self.envs.close()


def _row(obs, i: int):
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _with_final_obs(nxt, info: dict, done: np.ndarray):
    """The observation batch with finished envs' rows replaced by their true final observation."""
    fin = info["final_obs"]
    if isinstance(nxt, dict):
        out = {k: v.copy() for k, v in nxt.items()}
        for i in np.flatnonzero(done):
            for k in out:
                out[k][i] = fin[i][k]
        return out
    out = nxt.copy()
    for i in np.flatnonzero(done):
        out[i] = fin[i]
    return out


def evaluate(env: str | EnvSpec, agent: Agent, episodes: int, seed: int) -> dict[str, float]:
    """Greedy episodes with the current weights: one env per episode, each played to its first end."""
    envs = make_vector_env(env, episodes)
    obs, _ = envs.reset(seed=seed)
    stm = ShortTermMemory(episodes)
    returns = np.zeros(episodes)
    finished = np.zeros(episodes, dtype=bool)
    success = np.zeros(episodes, dtype=bool)
    reports_success = False
    while not finished.all():
        action = agent.act(obs, stm, explore=False)
        obs, reward, term, trunc, info = envs.step(action)
        returns += np.where(finished, 0.0, reward)
        done = np.logical_or(term, trunc)
        success |= _success(info, done) & ~finished
        reports_success = reports_success or "is_success" in info or "is_success" in info.get("final_info", {})
        finished |= done
        stm.reset(done)
    envs.close()
    out = {"eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std())}
    if reports_success:
        out["eval_success_rate"] = float(success.mean())
    return out


def _success(info: dict, done: np.ndarray) -> np.ndarray:
    """info['is_success'] per env; with same-step autoreset a finished env's own info is in 'final_info' (its
    top-level entry already belongs to the next episode's reset)."""
    now = np.asarray(info.get("is_success", np.zeros(len(done))), dtype=bool)
    fin = info.get("final_info", {})
    if "is_success" in fin:
        now = np.where(done, np.asarray(fin["is_success"], dtype=bool), now)
    return now


class TimedAgent:
    """The agent as the runner sees it: every act() is timed and its planned cost recorded in the metrics."""

    def __init__(self, agent: Agent, metrics):
        self.agent, self.metrics = agent, metrics

    def __getattr__(self, name: str):  # everything else (the belief state's history) is the agent's own
        return getattr(self.agent, name)

    def act(self, obs, short_term, explore: bool = True):
        t0 = time.perf_counter()
        out = self.agent.act(obs, short_term, explore)
        cost = short_term.history[-1][2] if short_term.history else None
        self.metrics.plan(time.perf_counter() - t0, None if cost is None else float(cost.float().mean()))
        return out
