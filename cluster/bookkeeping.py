"""Run bookkeeping of the driver loop (cluster/loop.py), whichever backend: counters, metrics lines, eval lines,
checkpoint counters and the summary, so the run directory reads the same."""

from __future__ import annotations

import time

import numpy as np

from ami.cluster.config import TrainConfig
from ami.cluster.rundir import RunDir


class RunBook:
    """Counts env steps, episodes and wall time of one run (continuing a resumed one) and writes its lines."""

    def __init__(self, cfg: TrainConfig, run: RunDir, counters: dict | None = None, backend: str = "inline"):
        c = counters or {}
        self.cfg, self.run, self.backend = cfg, run, backend
        self.env_steps = int(c.get("env_steps", 0))
        self.episodes = int(c.get("episodes", 0))
        self.wall_before = float(c.get("wall_seconds", 0.0))
        self.resumed_at = self.env_steps
        self.resumed_version = int(c.get("version", 0))  # the weights version the run goes on from
        self.t0 = time.perf_counter()
        self.recent: list[float] = []
        self.last_eval: dict = {}
        self.last_eval_at = -1
        # multiples of learner.checkpoint_every this invocation's checkpoints covered (a resume counts afresh)
        self.checkpoint_marks = 0

    # ----- counters -----------------------------------------------------------------------------------------
    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0

    def add_episodes(self, returns) -> None:
        for ret in returns:
            self.recent.append(float(ret))
            self.episodes += 1

    def counters(self) -> dict:
        """What a checkpoint records so that --resume continues the counters."""
        return {"env_steps": self.env_steps, "episodes": self.episodes, "wall_seconds": self.wall()}

    # ----- lines --------------------------------------------------------------------------------------------
    def eval_line(self, result: dict, updates: int, at_env_steps: int | None = None) -> None:
        """Record an evaluation (taken at `at_env_steps`, default now) in metrics.jsonl."""
        at = self.env_steps if at_env_steps is None else at_env_steps
        self.last_eval, self.last_eval_at = dict(result), at
        self.run.append_metrics({"env_steps": at, "updates": updates, "wall_seconds": self.wall(),
                                 "episodes": self.episodes, **result})

    def log_line(self, updates: int, version: int, replay_size: int, extra: dict | None = None) -> dict:
        line = {"env_steps": self.env_steps, "updates": updates, "wall_seconds": self.wall(),
                "episodes": self.episodes, "weights_version": version, "replay_size": replay_size}
        if self.recent:
            line["episode_return_mean"] = float(np.mean(self.recent))
            self.recent.clear()
        line.update(extra or {})
        self.run.append_metrics(line)
        return line

    def needs_final_eval(self) -> bool:
        return self.last_eval_at != self.env_steps

    def summary(self, updates: int, version: int, extra: dict | None = None) -> dict:
        """Write summary.json (every key of docs/contracts.md, then the backend's extras) and return it."""
        r, ev = self.cfg.run, self.last_eval
        out = {"env_steps": self.env_steps, "updates": updates, "wall_seconds": self.wall(),
               "eval_return_mean": ev.get("eval_return_mean"), "eval_return_std": ev.get("eval_return_std"),
               "weights_version": version, "env_id": r.env_id, "seed": r.seed, "episodes": self.episodes,
               "backend": self.backend, "action_repeat": r.action_repeat,
               # env_steps are decisions; each one is action_repeat simulator steps (fewer only where an episode
               # ended inside a repeat)
               "sim_steps": self.env_steps * r.action_repeat, "checkpoint_marks": self.checkpoint_marks}
        if "eval_success_rate" in ev:
            out["eval_success_rate"] = ev["eval_success_rate"]
        out.update(extra or {})
        self.run.write_summary(out)
        return out
