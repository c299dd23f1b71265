"""`ami eval`: rebuild the agent from a run's config.yaml and checkpoint, play greedy episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ami.actors.runner import evaluate
from ami.agent.agent import Agent
from ami.agent.config import AgentConfig
from ami.cluster.config import ConfigError, RunConfig, apply, env_spec
from ami.cluster.envinfo import inspect_env
from ami.cluster.rundir import RunDir
from ami.envs.make import EnvSpec, make_env
from ami.learner.learner import checkpoint_state


def load_agent(target: Path) -> tuple[Agent, dict]:
    """Agent with the weights of RUN_DIR's newest checkpoint that loads (latest.pt, else previous.pt), or of a
    checkpoint file inside a run dir."""
    state, cfg = read_run_checkpoint(target)
    return agent_from(state, cfg), cfg


def read_run_checkpoint(target: Path) -> tuple[dict, dict]:
    """(checkpoint state, config.yaml) of `load_agent`'s target: what a caller needing more of the checkpoint than
    the agent (its replay, say) reads once."""
    run = RunDir(target if target.is_dir() else target.parent.parent)
    if target.is_dir():
        found = run.read_checkpoint(checkpoint_state) if (run.path / "config.yaml").exists() else None
    else:
        found = (None, checkpoint_state(target.read_bytes())) if target.exists() else None
    if found is None or not (run.path / "config.yaml").exists():
        raise ConfigError(f"{target}: no checkpoint with a config.yaml beside it")
    return found[1], run.read_config()


def agent_from(state: dict, cfg: dict) -> Agent:
    """The agent a run's config.yaml describes, with a checkpoint state's weights."""
    info = inspect_env(recorded_env(cfg))
    agent = Agent(info.observation_space, info.action_space, apply(AgentConfig(), cfg["agent"], "agent."))
    agent.load_state_dict(state["agent"])
    return agent


def recorded_env(cfg: dict) -> EnvSpec:
    """The env a run's config.yaml names."""
    return env_spec(apply(RunConfig(), cfg["run"], "run."))


def evaluate_target(target: Path, episodes: int, seed: int, video: bool = False) -> dict:
    writer = video_writer() if video else None  # a missing extra is said before anything is played
    agent, cfg = load_agent(target)
    env = recorded_env(cfg)
    out = {"env_id": env.id, "episodes": episodes, **evaluate(env, agent, episodes, seed)}
    if video:
        out["video"] = str(record_video(writer, env, agent, Path(target if target.is_dir() else target.parent), seed))
    return out


def video_writer():
    """imageio, with the ffmpeg plugin that writes MP4 (the `video` extra); missing: a ConfigError (exit 2)."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - the plugin that writes MP4
    except ImportError:
        raise ConfigError("ami eval --video needs imageio and imageio-ffmpeg: pip install 'ami-agent[video]'") from None
    return imageio


def record_video(imageio, env: EnvSpec, agent: Agent, out_dir: Path, seed: int) -> Path:
    """One greedy episode rendered to rgb frames and written as eval.mp4 (`imageio`: from `video_writer`)."""
    from ami.agent.short_term import ShortTermMemory

    env = make_env(env, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    stm, frames, done = ShortTermMemory(1), [env.render()], False
    while not done:
        batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
        action = agent.act(batch, stm, explore=False)[0]
        obs, _, term, trunc, _ = env.step(action)
        frames.append(env.render())
        done = term or trunc
    fps = int(env.metadata.get("render_fps") or 25)
    env.close()
    h, w = frames[0].shape[:2]  # H.264 in yuv420p needs even sides: pad one edge row/column where odd
    frames = [np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") for f in frames]
    path = out_dir / "eval.mp4"
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)
    return path
