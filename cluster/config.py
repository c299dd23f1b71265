"""Run configuration: frozen dataclasses <- YAML <- CLI flags <- `key.path=value` overrides, validated.

Unknown keys and values of the wrong type raise ConfigError (the CLI turns it into one line and exit 2).
cluster/resolve.py puts the layers together once, over the env's and the task's defaults, and resolves the
agent's section (the configurator's choice for the env, then the user's agent.* keys).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ami.actors.runner import RunnerConfig
from ami.envs.make import EnvSpec
from ami.learner.learner import LearnerConfig


class ConfigError(ValueError):
    """A configuration the run cannot start with; the message is one line for the user."""


class RunFailed(RuntimeError):
    """A started run cannot go on (a crash loop, a process that does not come back); the message is one line,
    which `ami` prints as `ami: error: ...` (exit 1)."""


@dataclass(frozen=True)
class RunConfig:
    """What to run, for how long, where, and how often to report."""

    env_id: str = "Pendulum-v1"
    """Gymnasium id of the env: a registered id, `module:Id` (module registers it) or `dm_control/<domain>-<task>-v0`
    (DeepMind Control through shimmy: the [dmc] extra)."""
    env_kwargs: dict = field(default_factory=dict)
    """Keyword arguments passed to `gymnasium.make` (every env of the run, evaluation too)."""
    action_repeat: int = 1
    """Simulator steps per decision, rewards summed. The env's default layer sets 2 for DMC ids (TD-MPC2's and
    MR.Q's protocol); steps, eval_every and log_every count decisions."""
    init_from: str = ""
    """Run directory of an `ami pretrain` run to start from: its world-model weights and agent section (a layer
    under the user's own); empty: a fresh agent. A resumed run continues from its own checkpoint instead."""
    steps: int = 20000
    """Total env steps to collect (decisions: an env step as the agent sees it, after action repeat)."""
    seed: int = 0
    """Seed of torch, numpy, envs and replay sampling."""
    backend: str = "ray"
    """'ray' (default): Ray actors + Ray learner on a Redis replay; 'inline': one process, no services."""
    actors: int = 1
    """Actor processes (Ray backend)."""
    envs_per_actor: int = 1
    """Envs each actor steps together."""
    run_dir: str = ""
    """Run directory; empty means runs/<env>-<utc timestamp>/."""
    eval_every: int = 5000
    """Env steps between evaluations."""
    eval_episodes: int = 10
    """Greedy episodes per evaluation."""
    log_every: int = 1000
    """Env steps between metrics.jsonl lines."""
    replay_capacity: int = 1_000_000
    """Replay capacity in transitions."""
    plan_evals: int = 1152
    """Planner budget in world-model evaluations per decision (0: mode-1 policy only)."""
    device: str = "cpu"
    """Learner device ('cpu', 'cuda', 'cuda:0', ...)."""
    torch_threads: int = 0
    """torch intra-op threads of the inline backend's process; 0: one per core it may run on (it is the only busy
    process: measured on a 2-core box, inline DMC walker-walk 24.1-24.7 steps/s at 2 threads vs 18.0-20.6 at 1).
    Ray actors keep one thread each and the Ray learner has runtime.learner_threads."""
    explore_env_id: str = ""
    """Env id the actors play in when it is not env_id (same spaces; evaluation always uses env_id): e.g. a maze
    whose starts lie anywhere, so reward-free random play reaches every room. Goal tasks pick the env's
    registered '...Explore-v0' variant when there is one."""
    task: str = "auto"
    """'reward' (maximise the env's reward), 'goal' (reach the goal observation, reward-free; needs a
    Dict({'observation', 'goal'}) observation space) or 'auto' (goal exactly for such spaces)."""


@dataclass(frozen=True)
class RuntimeConfig:
    """The Ray backend: placement, weight broadcast and pacing of actors against the learner."""

    num_cpus: int = 0
    """CPUs of a Ray instance that ami starts itself (0: every core of this machine)."""
    actor_cpus: float = -1.0
    """CPUs each actor reserves in Ray's scheduler. -1: one on a cluster ami attaches to (--ray-address,
    RAY_ADDRESS, or a Ray the calling process joined), so actors go only to nodes with free CPUs and those that
    do not fit wait, pending, for an autoscaler to add nodes; none on a Ray instance ami starts itself. 0: none,
    so any --actors fits (actors are pinned round-robin to every alive node)."""
    learner_gpus: float = -1.0
    """GPUs the learner reserves (-1: one when the cluster has a GPU, else none; 0: CPU learner)."""
    version_check_every: int = 4
    """Vector steps between an actor's (non-blocking) check for a newer weights version."""
    claim_steps: int = 16
    """Vector steps an actor claims at once from the run's shared env-step budget (kept in Redis)."""
    max_update_lag: int = 200
    """Actors pause while the learner owes more than this many updates under learner.updates_per_step
    (0: never pause, the learner then trains whatever it can keep up with)."""
    learner_chunk: int = 10
    """Updates the learner runs between two looks at the replay's insert counter."""
    learner_threads: int = 1
    """torch intra-op threads of the learner process (actors keep one each); more only pays where cores idle."""
    poll_s: float = 0.25
    """Seconds between the driver's looks at actors, learner, evaluation and the scale file."""
    max_restarts: int = 3
    """Crashes of one actor or learner process the run rides out within runtime.restart_window_s (Ray restarts it,
    the driver resumes its work); one more within that window is a crash loop and stops the run."""
    restart_window_s: float = 600.0
    """Sliding window of runtime.max_restarts, seconds: crashes further apart never add up, so a days-long run
    survives any number of them (spot nodes), while a process that crashes every few seconds stops the run."""
    redis_timeout_s: float = 10.0
    """Socket timeout of every Redis client of the run: a hung server makes a command fail (and be retried)
    after this long instead of stalling the process in silence."""
    redis_aof: bool = True
    """The private redis-server keeps an append-only file (fsync every second), so a crashed server comes
    back, restarted by the driver, with all but the last second of inserts."""


@dataclass(frozen=True)
class TrainConfig:
    """The whole run. `agent` is filled by the configurator, then overridden by the user's `agent.*` keys."""

    run: RunConfig = field(default_factory=RunConfig)
    """The run."""
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    """Episode runner (segment length)."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Learner."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Ray backend settings (ignored by the inline backend)."""
    agent: dict = field(default_factory=dict)
    """Overrides of the configurator's AgentConfig, as a nested mapping (resolved in `resolve_agent`)."""


def _coerce(value: Any, like: Any, path: str) -> Any:
    """Convert a YAML/CLI value to the type of the field's default, or raise ConfigError."""
    try:
        if isinstance(like, bool):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                return value.lower() in ("true", "1", "yes", "on")
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(like, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if isinstance(like, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(like, str):
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {path!r}: expected {type(like).__name__}, got {value!r}") from None
    return value


def apply(obj: Any, updates: dict, prefix: str = "") -> Any:
    """A copy of the frozen dataclass `obj` with `updates` (nested mapping) applied; unknown keys rejected."""
    if not isinstance(updates, dict):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping, got {updates!r}")
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in updates.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur):
            changes[key] = apply(cur, value, path + ".")
        elif isinstance(cur, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config section {path!r} must be a mapping")
            changes[key] = _merge(cur, value)
        else:
            changes[key] = _coerce(value, cur, path)
    return dataclasses.replace(obj, **changes)


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


class _Loader(yaml.SafeLoader):
    """YAML with only true/false as booleans (YAML 1.2's rule): `agent.belief=on` stays the string 'on', where
    YAML 1.1 would read on/off/yes/no as booleans; bool keys still take yes/no/on/off (`_coerce`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def read_yaml(text: str):
    """Parse YAML text by the config's rules (see `_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: it builds plain data only


def parse_override(text: str) -> dict:
    """'a.b.c=value' -> {'a': {'b': {'c': value}}} with value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not key.path=value")
    key, raw = text.split("=", 1)
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = read_yaml(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict:
    """Read a YAML config file (a mapping), or raise ConfigError with one line."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def build(layers: list[dict]) -> TrainConfig:
    """Apply each layer (YAML, then flags, then overrides) on top of the defaults."""
    cfg = TrainConfig()
    for layer in layers:
        cfg = apply(cfg, layer)
    r = cfg.run
    if r.backend not in ("inline", "ray"):
        raise ConfigError(f"run.backend must be 'inline' or 'ray', got {r.backend!r}")
    if r.task not in ("auto", "reward", "goal"):
        raise ConfigError(f"run.task must be 'auto', 'reward' or 'goal', got {r.task!r}")
    for name in ("steps", "actors", "envs_per_actor", "eval_episodes", "log_every", "eval_every",
                 "replay_capacity", "action_repeat"):
        if getattr(r, name) <= 0:
            raise ConfigError(f"run.{name} must be positive")
    if r.torch_threads < 0:
        raise ConfigError("run.torch_threads must be 0 (one per core) or positive")
    if cfg.learner.window < 1 or cfg.learner.batch_size < 1 or cfg.learner.snapshot_every < 1:
        raise ConfigError("learner.window, learner.batch_size and learner.snapshot_every must be positive")
    rt = cfg.runtime
    if cfg.runner.explore not in ("plan", "random") or cfg.runner.random_repeat < 1 or cfg.runner.segment_length < 1:
        raise ConfigError("runner.explore must be 'plan' or 'random', runner.random_repeat and runner.segment_length "
                          "positive")
    lc = cfg.learner
    if min(lc.warmup_steps, lc.warmup_updates, lc.checkpoint_every, r.plan_evals, cfg.runtime.max_update_lag,
           cfg.runtime.max_restarts) < 0 or lc.updates_per_step <= 0:
        raise ConfigError("learner.warmup_steps, learner.warmup_updates, learner.checkpoint_every, run.plan_evals, "
                          "runtime.max_update_lag and runtime.max_restarts must not be negative, "
                          "learner.updates_per_step positive")
    if rt.actor_cpus < 0 and rt.actor_cpus != -1:
        raise ConfigError("runtime.actor_cpus must be -1 (one on an attached cluster, else none) or not negative")
    counts = (rt.version_check_every, rt.claim_steps, rt.learner_chunk, rt.learner_threads)
    if min(counts) < 1 or min(rt.poll_s, rt.redis_timeout_s, rt.restart_window_s) <= 0:
        raise ConfigError("runtime.version_check_every, claim_steps, learner_chunk, learner_threads, poll_s, "
                          "redis_timeout_s and restart_window_s must be positive")
    return cfg


def env_spec(run: RunConfig, env_id: str = "") -> EnvSpec:
    """What makes the run's envs (`env_id`, e.g. run.explore_env_id, in place of run.env_id)."""
    return EnvSpec(env_id or run.env_id, dict(run.env_kwargs), run.action_repeat)


def to_dict(cfg: TrainConfig, agent_cfg=None) -> dict:
    """The fully resolved config (what config.yaml records)."""
    out = dataclasses.asdict(cfg)
    if agent_cfg is not None:
        out["agent"] = dataclasses.asdict(agent_cfg)
    return out
