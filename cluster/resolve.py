"""A run's configuration, resolved once: the user's layers over the env's defaults (DMC's action repeat) and the
task's (goal tasks), the agent's section from the configurator and the user's agent.* keys, every value checked.
Whatever is wrong is a ConfigError here, before anything starts (the CLI's exit 2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ami.agent.config import AgentConfig, problems
from ami.agent.goal import goal_conditioned
from ami.cluster.config import ConfigError, RunConfig, TrainConfig, apply, build, env_spec
from ami.cluster.envinfo import EnvInfo, inspect_env
from ami.cluster.rundir import RunDir
from ami.envs.make import default_action_repeat

GOAL_RANDOM_REPEAT = 8
"""Random exploration of goal tasks holds each action this many steps: the world model (and level 2's k-step
predictor) must see moves that cross rooms, which single-step noise rarely makes (benchmarks/goal_reaching.py)."""

GOAL_UPDATES_PER_STEP = 0.25
"""Replay ratio of goal tasks: random play is cheap and the world model needs breadth of data more than
updates (benchmarks/goal_reaching.py reaches 98% on TwoRooms with 0.15 updates per random step)."""


@dataclass(frozen=True)
class Resolved:
    """Everything a backend starts from."""

    cfg: TrainConfig
    """The run's config (the agent section as the user wrote it; `agent` is the resolved one)."""
    agent: AgentConfig
    """The agent's config for this env and task."""
    info: EnvInfo
    """The env's spaces and episode length."""


def resolve_run(layers: list[dict]) -> Resolved:
    """The run the user's layers describe (YAML, flags, overrides; later wins); what the user set wins over the
    env's and the task's defaults."""
    env_layer = env_defaults(str(named_value(layers, ("run", "env_id"), RunConfig.env_id)))
    init = named_value(layers, ("run", "init_from"), "")
    if init:  # the pretraining run's agent section (its architecture), under everything the user wrote
        layers = [init_layer(str(init)), *layers]
    cfg = build([env_layer, *layers])
    info = inspect_env(env_spec(cfg.run))
    agent = configure_agent(cfg, info)
    preset = _unnamed(task_defaults(cfg, info.observation_space, agent), layers)
    if preset:
        cfg = apply(cfg, preset)
    if cfg.run.explore_env_id:
        play = inspect_env(env_spec(cfg.run, cfg.run.explore_env_id))
        if (play.observation_space, play.action_space) != (info.observation_space, info.action_space):
            raise ConfigError(f"run.explore_env_id {play.env_id!r} has other spaces than {info.env_id!r}")
    return Resolved(cfg, check_agent(cfg, agent, info), info)


INIT_SECTIONS = ("encoder", "world_model")
"""What a run started with --init-from takes from the pretraining run's agent section: what its weights are the
weights of (the planner, cost and optimiser stay the configurator's and the user's)."""


def init_layer(path: str) -> dict:
    """The world model's architecture of the pretraining run (`ami pretrain`) at `path`, as a config layer."""
    run = RunDir(Path(path))
    if not run.pretrained.is_file():
        raise ConfigError(f"--init-from {path}: no pretraining run there (no {run.pretrained})")
    try:
        agent = run.read_config()["agent"]
        return {"agent": {k: agent[k] for k in INIT_SECTIONS}}
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"--init-from {path}: unreadable config.yaml ({' '.join(str(e).split())})") from None


def named_value(layers: list[dict], path: tuple[str, ...], default):
    """The value the last layer naming `path` gives it (build() checks its type), else `default`."""
    for layer in reversed(layers):
        node = layer
        for key in path:
            node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
        if node is not _MISSING:
            return node
    return default


_MISSING = object()


def _unnamed(preset: dict, layers: list[dict], prefix: tuple[str, ...] = ()) -> dict:
    """The part of `preset` (a nested mapping) that no user layer names."""
    out = {}
    for key, value in preset.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            sub = _unnamed(value, layers, path)
            if sub:
                out[key] = sub
        elif named_value(layers, path, _MISSING) is _MISSING:
            out[key] = value
    return out


def env_defaults(env_id: str) -> dict:
    """Defaults an env id brings (a layer under the user's own): DMC's action repeat."""
    import gymnasium as gym

    try:
        repeat = default_action_repeat(env_id)
    except (ImportError, gym.error.Error):  # an id that cannot be made: inspect_env says why, in one line
        return {}
    return {"run": {"action_repeat": repeat}} if repeat != 1 else {}


def task_kind(cfg: TrainConfig, obs_space) -> str:
    """'goal' or 'reward' for this run on this observation space; ConfigError when they do not fit."""
    from ami.agent.goal import is_goal_space

    goal_space = is_goal_space(obs_space)
    if cfg.run.task == "goal" and not goal_space:
        raise ConfigError(f"run.task=goal needs a Dict observation space with 'observation' and 'goal' of one "
                          f"space; {cfg.run.env_id} has {obs_space}")
    if cfg.run.task == "auto":
        return "goal" if goal_space else "reward"
    return cfg.run.task


def task_defaults(cfg: TrainConfig, obs_space, agent: AgentConfig) -> dict:
    """Defaults a goal task brings (a layer under the user's own): reward-free exploration by held random
    actions (only evaluation plans), a lower replay ratio, and windows long enough for level 2 (two k-step
    chunks, so its k-step prediction has a target)."""
    if task_kind(cfg, obs_space) != "goal":
        return {}
    import gymnasium as gym

    window = 2 * agent.hierarchy.k if agent.hierarchy.enabled else 8
    out = {"runner": {"random_repeat": GOAL_RANDOM_REPEAT, "explore": "random"},
           "learner": {"window": window, "updates_per_step": GOAL_UPDATES_PER_STEP}}
    base, _, version = cfg.run.env_id.rpartition("-v")
    explore_id = f"{base}Explore-v{version}"
    if base and not base.endswith("Explore") and explore_id in gym.registry:
        out["run"] = {"explore_env_id": explore_id}
    return out


def configure_agent(cfg: TrainConfig, info: EnvInfo) -> AgentConfig:
    """The configurator's AgentConfig for the env's spaces and the run's task, with the user's agent.* keys
    applied ('auto' belief resolved by what the env declares); not yet checked (`check_agent`)."""
    from ami.agent.belief import belief_mode
    from ami.agent.configurator import ComputeBudget, configure

    budget = ComputeBudget(plan_evals=cfg.run.plan_evals, episode_steps=info.max_episode_steps or 1000,
                           device=cfg.run.device)
    base = configure(info.observation_space, info.action_space, task_kind(cfg, info.observation_space), budget)
    agent = apply(base, cfg.agent, "agent.")
    try:
        return dataclasses.replace(agent, belief=belief_mode(agent.belief, info.partially_observed))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check_agent(cfg: TrainConfig, agent: AgentConfig, info: EnvInfo) -> AgentConfig:
    """`agent`, or a ConfigError naming the first thing that keeps it from building or training in this run."""
    wrong = problems(agent)
    if wrong:
        raise ConfigError(wrong[0])
    if agent.belief == "on":
        from ami.agent.belief import belief_space

        try:
            belief_space(info.observation_space, 1, agent.history)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    h = agent.hierarchy
    if h.enabled and not goal_conditioned(agent.cost.goal_weight, info.observation_space):
        raise ConfigError("agent.hierarchy.enabled needs a goal task: a Dict({'observation', 'goal'}) space and "
                          "agent.cost.goal_weight > 0")
    if h.enabled and cfg.learner.window < 2 * h.k:
        raise ConfigError(f"learner.window={cfg.learner.window} is too short for level 2: it needs at least "
                          f"2 * agent.hierarchy.k = {2 * h.k} steps")
    return agent


def resolve_agent(cfg: TrainConfig, info: EnvInfo) -> AgentConfig:
    """The checked AgentConfig of `cfg` on this env (configure_agent, then check_agent)."""
    return check_agent(cfg, configure_agent(cfg, info), info)
