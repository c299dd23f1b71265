"""What gait did a MuJoCo run's agent settle into? Read from the run's own replay (inline runs keep it in their
checkpoint), no agent needed:

    python benchmarks/mujoco_gait.py RUN_DIR [RUN_DIR ...] [--block 2500] [--last ROWS]

Per block of `--block` replay rows: the mean forward velocity, the reward per step, the terminations (falls) and
the share of steps with the torso turned past 90° (on its back); per run: the training episodes (cut at
terminations, truncations and observation jumps — a reset or a resumed sitting) marked `b` where most of their steps
were on the back. Found with it (RESULTS.md, #9): HalfCheetah-v5 runs that flip and run on their back, Hopper-v5
runs whose forward velocity falls to 0 as they learn to stand. Last line: one JSON object {run name: figures}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from critic_calibration import episode_breaks, replay_tail  # its episode cuts: one rule for both probes

from ami.cluster.evaluate import read_run_checkpoint

POSE = {"HalfCheetah": (8, 1), "Hopper": (5, 1), "Walker2d": (8, 1)}
"""Gymnasium MuJoCo body -> (forward velocity, torso pitch) columns of its observation (v4/v5, with
`exclude_current_positions_from_observation` at its default: qpos[1:] then qvel)."""


def pose_columns(env_id: str) -> tuple[int, int]:
    body = env_id.split(":")[-1].split("-v")[0]
    if body not in POSE:
        raise SystemExit(f"{env_id}: no gait read for this env (known: {', '.join(sorted(POSE))})")
    return POSE[body]


def gait(cols: dict[str, np.ndarray], breaks: np.ndarray, env_id: str, block: int) -> dict:
    """Blocks and episodes of one replay (numpy columns; `breaks` marks each episode's last row)."""
    vel_col, pitch_col = pose_columns(env_id)
    obs, reward = np.asarray(cols["obs"]), np.asarray(cols["reward"], np.float64)
    vel, back = obs[:, vel_col], np.cos(obs[:, pitch_col]) < 0
    term = np.asarray(cols["terminated"]).astype(bool)
    blocks = [{"from": i, "velocity": float(vel[i:i + block].mean()), "reward": float(reward[i:i + block].mean()),
               "falls": int(term[i:i + block].sum()), "on_back": float(back[i:i + block].mean())}
              for i in range(0, len(reward), block)]
    ends = np.flatnonzero(breaks) + 1
    episodes = [{"return": float(reward[a:b].sum()), "steps": int(b - a), "on_back": bool(back[a:b].mean() > 0.5)}
                for a, b in zip(np.r_[0, ends[:-1]], ends, strict=True)]
    return {"blocks": blocks, "episodes": episodes}


def _print(name: str, g: dict) -> None:
    print(f"## {name}\n\n| rows from | forward velocity | reward per step | falls | on its back |")
    print("|---|---|---|---|---|")
    for b in g["blocks"]:
        print(f"| {b['from']} | {b['velocity']:.2f} | {b['reward']:.2f} | {b['falls']} | {b['on_back']:.0%} |")
    print("\nepisodes (return, b = on its back):",
          " ".join(f"{e['return']:.0f}{'b' if e['on_back'] else ''}" for e in g["episodes"]), "\n", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--block", type=int, default=2500, help="replay rows per block (default 2500)")
    p.add_argument("--last", type=int, default=10**9, help="replay rows from the end (default: all)")
    a = p.parse_args()
    out = {}
    for run in a.runs:
        state, cfg = read_run_checkpoint(run)
        cols = replay_tail(state, run, a.last)
        out[run.name] = gait(cols, episode_breaks(cols), cfg["run"]["env_id"], a.block)
        _print(run.name, out[run.name])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
