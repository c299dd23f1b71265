"""`ami eval`: rebuild the agent from a run's config.yaml and checkpoint, play greedy episodes."""

from __future__ import annotations

from pathlib import Path

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
    run = RunDir(target if target.is_dir() else target.parent.parent)
    if target.is_dir():
        found = run.read_checkpoint(checkpoint_state) if (run.path / "config.yaml").exists() else None
    else:
        found = (None, checkpoint_state(target.read_bytes())) if target.exists() else None
    if found is None or not (run.path / "config.yaml").exists():
        raise ConfigError(f"{target}: no checkpoint with a config.yaml beside it")
    cfg = run.read_config()
    info = inspect_env(recorded_env(cfg))
    agent_cfg = apply(AgentConfig(), cfg["agent"], "agent.")
    agent = Agent(info.observation_space, info.action_space, agent_cfg)
    agent.load_state_dict(found[1]["agent"])
    return agent, cfg


def recorded_env(cfg: dict) -> EnvSpec:
    """The env a run's config.yaml names."""
    return env_spec(apply(RunConfig(), cfg["run"], "run."))


def evaluate_target(target: Path, episodes: int, seed: int, video: bool = False) -> dict:
    agent, cfg = load_agent(target)
    env = recorded_env(cfg)
    out = {"env_id": env.id, "episodes": episodes, **evaluate(env, agent, episodes, seed)}
    if video:
        out["video"] = str(record_gif(env, agent, Path(target if target.is_dir() else target.parent), seed))
    return out


def record_gif(env: EnvSpec, agent: Agent, out_dir: Path, seed: int) -> Path:
    """One greedy episode rendered to rgb frames and saved as a GIF with matplotlib's Pillow writer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.animation as animation
    import matplotlib.pyplot as plt

    from ami.agent.short_term import ShortTermMemory

    env = make_env(env, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    stm, frames, done = ShortTermMemory(1), [env.render()], False
    while not done:
        batch = {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
        action = agent.act(batch, stm, explore=False)[0]
        obs, _, term, trunc, _ = env.step(action)
        frames.append(env.render())
        done = term or trunc
    env.close()
    fig = plt.figure(figsize=(frames[0].shape[1] / 100, frames[0].shape[0] / 100), dpi=100)
    im = plt.figimage(frames[0])
    anim = animation.FuncAnimation(fig, lambda f: im.set_data(f) or [im], frames=frames[::2], blit=True)
    path = out_dir / "eval.gif"
    anim.save(path, writer=animation.PillowWriter(fps=25))
    plt.close(fig)
    return path
