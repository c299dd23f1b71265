"""`ami train --help-config`: every config key with its type, default and doc line, read from the frozen config
dataclasses themselves (the docstring literal right after each field), so the listing cannot drift from the code.

Which agent.* keys the configurator chooses per env, and which a goal task defaults otherwise, is found by running
that code (`configurator_keys`, `goal_task_keys`), not written down here a second time.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One leaf config key."""

    path: str
    """Dotted key, as `key.path=value` names it."""
    type: str
    """The field's annotation."""
    default: object
    """Its value when nothing sets it (agent.*: AgentConfig's, before the configurator's choice)."""
    doc: str
    """The field's docstring, on one line."""


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal right after the field in `cls`'s body, whitespace folded to one line."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    out = {}
    for stmt, nxt in itertools.pairwise(body):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            out[stmt.target.id] = " ".join(nxt.value.value.split())
    return out


def leaf_keys(obj, prefix: str) -> list[Key]:
    """Every leaf field of the dataclass instance `obj` (nested dataclasses under their dotted path)."""
    docs = field_docs(type(obj))
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += leaf_keys(value, f"{prefix}{f.name}.")
        else:
            out.append(Key(f"{prefix}{f.name}", str(f.type), value, docs.get(f.name, "")))
    return out


def sections() -> list[tuple[str, object]]:
    """(name, instance holding its defaults) of each section of TrainConfig. `agent` is a mapping there (the user's
    overrides of the configurator's AgentConfig), so its keys are AgentConfig's."""
    from ami.agent.config import AgentConfig
    from ami.cluster.config import TrainConfig

    cfg = TrainConfig()
    return [(f.name, AgentConfig() if f.name == "agent" else getattr(cfg, f.name)) for f in dataclasses.fields(cfg)]


def all_keys() -> list[Key]:
    return [k for name, obj in sections() for k in leaf_keys(obj, f"{name}.")]


def _flat(obj, prefix: str = "") -> dict:
    """A dataclass instance or nested mapping as {dotted key: value}."""
    items = dataclasses.asdict(obj).items() if dataclasses.is_dataclass(obj) else obj.items()
    out = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def _spaces():
    import numpy as np
    from gymnasium import spaces

    vec, img = spaces.Box(-1.0, 1.0, (3,), np.float32), spaces.Box(0, 255, (32, 32, 3), np.uint8)
    goals = [spaces.Dict({"observation": s, "goal": s}) for s in (vec, img)]
    return [vec, img], goals, [spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(4)]


@functools.cache
def configurator_keys() -> frozenset[str]:
    """agent.* keys that agent/configurator.py `configure` sets to other values than AgentConfig's defaults, over
    the cases it tells apart: vector, image and goal observations, Box and Discrete actions, reward and goal
    tasks, no / a small / the default planning budget, short and long episodes, CPU and GPU learners."""
    from ami.agent.config import AgentConfig
    from ami.agent.configurator import ComputeBudget, configure

    plain, goals, actions = _spaces()
    budgets = [ComputeBudget(), ComputeBudget(plan_evals=0), ComputeBudget(plan_evals=256, episode_steps=50),
               ComputeBudget(device="cuda", episode_steps=1000)]
    cases = [(o, "reward") for o in plain + goals] + [(o, "goal") for o in goals]
    base = _flat(AgentConfig())
    changed = set()
    for (obs, task), act, budget in itertools.product(cases, actions, budgets):
        chosen = _flat(configure(obs, act, task, budget))
        changed |= {f"agent.{k}" for k, v in chosen.items() if v != base[k]}
    return frozenset(changed)


GOAL_EXAMPLE_ENV = "ami/FourRooms-v0"
"""A built-in goal task with an '...Explore-v0' variant, so `task_defaults` shows every key it may set."""


@functools.cache
def goal_task_keys() -> frozenset[str]:
    """Keys a goal task's defaults layer (cluster/resolve.py `task_defaults`) sets below the user's own layers."""
    from ami.agent.configurator import ComputeBudget, configure
    from ami.cluster.config import RunConfig, TrainConfig
    from ami.cluster.resolve import task_defaults
    from ami.envs import register_envs

    register_envs()
    _, goals, actions = _spaces()
    cfg = TrainConfig(run=RunConfig(env_id=GOAL_EXAMPLE_ENV, task="goal"))
    agent = configure(goals[0], actions[0], "goal", ComputeBudget(episode_steps=300))
    return frozenset(_flat(task_defaults(cfg, goals[0], agent)))


MARKS = (("configurator", configurator_keys,
          "agent/configurator.py chooses it from the env's spaces, the task and the budget (run.plan_evals, "
          "run.device); the default shown is AgentConfig's, and an override wins over the choice."),
         ("goal task", goal_task_keys,
          "a goal task (run.task=goal, or 'auto' on a goal observation space) defaults it otherwise "
          "(cluster/resolve.py task_defaults); an override or --config wins."))


def format_key(key: Key, marks: tuple[str, ...] = ()) -> str:
    tags = "".join(f" [{m}]" for m in marks)
    return f"{key.path} ({key.type}, default {key.default!r}){tags}: {key.doc}"


def format_config_help() -> str:
    """The text of `ami train --help-config`: a legend, then one line per key under a line per section."""
    lines = ["Config keys of `ami train`, one per line: KEY (TYPE, default VALUE) [MARKS]: what it does.",
             "Set one as key.path=value (e.g. agent.planner.horizon=5), or nest them in --config FILE.yaml",
             "(run: {eval_every: 10000}). A run's RUN_DIR/config.yaml records every value the run used.",
             "Marks:"]
    lines += [textwrap.fill(f"[{name}] {text}", 110, initial_indent="  ", subsequent_indent="    ")
              for name, _, text in MARKS]
    marked = [(name, find()) for name, find, _ in MARKS]
    for name, obj in sections():
        doc = " ".join((inspect.getdoc(type(obj)) or "").split())
        lines += ["", f"{name}.*  ({type(obj).__name__}) {doc}"]
        for key in leaf_keys(obj, f"{name}."):
            lines.append(format_key(key, tuple(m for m, keys in marked if key.path in keys)))
    return "\n".join(lines)
