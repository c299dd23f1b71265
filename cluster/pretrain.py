"""`ami pretrain`: the world model learned from observation-only trajectories (agent/pretrain.py), written as a
run directory that `ami train --init-from DIR` starts from.

The run directory holds config.yaml (the resolved config, agent.world_model.latent_action_dim set),
metrics.jsonl (one line per run.log_every updates), checkpoints/pretrained.pt (RunDir.pretrained: {"agent":
state_dict, "counters"}) and summary.json ({"kind": "pretrain", ...}). The checkpoint is not latest.pt: a
pretraining run is no interaction run to --resume, and `ami train --resume` on it says so.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ami.agent.goal import STATE_KEY, state_space
from ami.cluster.config import ConfigError, to_dict
from ami.cluster.resolve import Resolved, named_value, resolve_run, task_kind
from ami.cluster.rundir import RunDir
from ami.memory.passive import PassiveDataError, Windows, load_observations


@dataclass(frozen=True)
class PretrainArgs:
    """What `ami pretrain` was asked."""

    data: str
    """Observation-only data: an .npz directory or a Minari dataset (memory/passive.py)."""
    updates: int
    """Gradient steps to take."""
    run_dir: str
    """Where to write the run (must not hold a run yet)."""
    layers: tuple[dict, ...]
    """Config layers (run.env_id and the user's overrides), later wins."""


def resolve_pretrain(layers: list[dict]) -> Resolved:
    """The run's config with latent actions on (one per action dimension unless the user set the width);
    ConfigError when the agent cannot pretrain."""
    from ami.agent.actions import ActionSpec

    path = ("agent", "world_model", "latent_action_dim")
    res = resolve_run(layers)
    if named_value(layers, path, None) is None:
        dim = ActionSpec.from_space(res.info.action_space).dim
        res = resolve_run([*layers, {"agent": {"world_model": {"latent_action_dim": dim}}}])
    if res.agent.world_model.latent_action_dim < 1:
        raise ConfigError("ami pretrain needs agent.world_model.latent_action_dim >= 1")
    if res.agent.belief == "on":
        raise ConfigError("ami pretrain cannot use agent.belief=on: the belief state reads past actions, which "
                          "observation-only data does not have")
    space = data_space(res)
    if getattr(space, "shape", None) is None:
        raise ConfigError(f"ami pretrain needs array observations (or a goal task's state part); "
                          f"{res.info.env_id} has {space}")
    return res


def data_key(res: Resolved) -> str | None:
    """The part of each observation that pretraining data holds: a goal task's state (its goal is no part of the
    dynamics, and the world model encodes the state alone), else None: the whole observation."""
    return STATE_KEY if task_kind(res.cfg, res.info.observation_space) == "goal" else None


def data_space(res: Resolved):
    """The space of one step of the pretraining data (see data_key)."""
    space = res.info.observation_space
    return state_space(space) if data_key(res) else space


def pretrain(a: PretrainArgs, progress: bool = False) -> dict:
    """Train, write the run directory; the summary."""
    from ami.agent.agent import Agent
    from ami.agent.pretrain import PassiveUpdater

    res = resolve_pretrain(list(a.layers))
    cfg, info = res.cfg, res.info
    if a.updates < 1:
        raise ConfigError(f"--updates must be at least 1, got {a.updates}")
    run = RunDir(Path(a.run_dir))
    if (run.path / "summary.json").exists() or run.latest_checkpoint.exists() or run.pretrained.exists():
        raise ConfigError(f"run directory {run.path} already holds a run")
    windows = _windows(a.data, res)
    torch.manual_seed(cfg.run.seed)
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)
    agent = Agent(info.observation_space, info.action_space, res.agent, device=cfg.run.device)
    upd = PassiveUpdater(agent.world_model, res.agent.optim.lr, res.agent.optim.grad_clip, agent.device)
    run.create()
    run.write_config(to_dict(cfg, res.agent))
    t0 = time.perf_counter()
    last = _train(upd, windows, a.updates, cfg, run, progress)
    buf = io.BytesIO()
    torch.save({"agent": agent.state_dict(), "counters": {"updates": a.updates}}, buf)
    run.write(str(run.pretrained.relative_to(run.path)), buf.getvalue())
    summary = {"kind": "pretrain", "env_id": info.env_id, "seed": cfg.run.seed, "updates": a.updates,
               "episodes": len(windows.episodes), "transitions": windows.transitions,
               "wall_seconds": time.perf_counter() - t0, **{k: v for k, v in last.items() if k.startswith("loss_")}}
    # not write_summary: its keys are an interaction run's (env steps, evaluation), which this run has none of
    run.write("summary.json", json.dumps(summary, indent=2) + "\n")
    return {"run_dir": str(run.path), **summary}


def _windows(data: str, res: Resolved) -> Windows:
    """The data as windows of learner.window steps; ConfigError when it is unusable for this env."""
    try:
        key = data_key(res)
        episodes = load_observations(data, key=key)
        shape = data_space(res).shape
        if episodes[0].shape[1:] != shape:
            part = "state observations" if key else "observations"
            raise PassiveDataError(f"--data observations have shape {episodes[0].shape[1:]}, {res.info.env_id}'s "
                                   f"{part} have {shape}")
        return Windows(episodes, res.cfg.learner.window + 1, res.cfg.run.seed)
    except PassiveDataError as e:
        raise ConfigError(str(e)) from None


def _train(upd, windows: Windows, updates: int, cfg, run: RunDir, progress: bool) -> dict[str, float]:
    """`updates` steps at learner.batch_size, a metrics line every run.log_every; the last line's means."""
    t0, sums, last, every = time.perf_counter(), {}, {}, cfg.run.log_every
    bar = _bar(updates, progress)
    for i in range(1, updates + 1):
        for k, v in upd.step(windows.sample(cfg.learner.batch_size)).items():
            sums[k] = sums.get(k, 0.0) + v
        if i % every == 0 or i == updates:
            last = {k: v / (i - (i - 1) // every * every) for k, v in sums.items()}
            run.append_metrics({"updates": i, "wall_seconds": time.perf_counter() - t0, **last})
            sums = {}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return last


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="upd", desc="pretrain", mininterval=1.0)


def read_pretrained(path: str) -> bytes:
    """The checkpoint bytes of the pretraining run at `path`; ConfigError when there is none."""
    f = RunDir(Path(path)).pretrained
    try:
        return f.read_bytes()
    except OSError as e:
        raise ConfigError(f"--init-from {path}: cannot read {f} ({e.strerror})") from None


def check_init(res: Resolved, path: str) -> bytes:
    """The pretrained checkpoint of `path`, checked to fit the run's agent (same spaces, same architecture)."""
    from ami.agent.agent import Agent
    from ami.agent.pretrain import load_pretrained, pretrained_from_bytes

    data = read_pretrained(path)
    try:
        weights = pretrained_from_bytes(data)
        load_pretrained(Agent(res.info.observation_space, res.info.action_space, res.agent), weights)
    except (KeyError, TypeError, RuntimeError, EOFError, ValueError) as e:
        raise ConfigError(f"--init-from {path}: {' '.join(str(e).split())}") from None
    return data
