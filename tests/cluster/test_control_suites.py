"""The control suites through `ami train`: a DMC id (shimmy) and a MuJoCo id each train a few hundred steps
and write a valid summary.json; DMC counts decisions at action repeat 2 and reports simulator steps too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ami.cluster.cli import main
from ami.cluster.rundir import SUMMARY_KEYS

SMOKE = ["--no-progress", "--steps", "240", "run.eval_every=240", "run.eval_episodes=1", "learner.warmup_steps=120",
         "learner.batch_size=32", "run.plan_evals=64"]


@pytest.mark.parametrize("env_id,repeat,backend", [("dm_control/cartpole-swingup-v0", 2, "ray"),
                                                    ("Hopper-v5", 1, "inline")])
def test_a_few_hundred_steps_write_a_valid_summary(request, tmp_path: Path, env_id: str, repeat: int,
                                                   backend: str) -> None:
    """DMC on the Ray backend (its actor and evaluator make the env from the run's kwargs and action repeat),
    MuJoCo inline."""
    pytest.importorskip("shimmy" if env_id.startswith("dm_control/") else "mujoco")
    run = tmp_path / "run"
    args = ["train", "--env", env_id, "--run-dir", str(run), "--backend", backend, *SMOKE]
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
        args += ["--redis-url", request.getfixturevalue("redis_server").url]
    assert main(args) == 0
    s = json.loads((run / "summary.json").read_text())
    assert set(SUMMARY_KEYS) <= set(s) and s["env_id"] == env_id and s["backend"] == backend
    assert s["env_steps"] == 240 and s["action_repeat"] == repeat and s["sim_steps"] == 240 * repeat
    assert s["updates"] == 240 - 120 + 1 and np_finite(s["eval_return_mean"])
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["run"]["action_repeat"] == repeat  # the env's default layer, recorded as resolved


def test_the_user_setting_wins_over_the_dmc_default(tmp_path: Path) -> None:
    pytest.importorskip("shimmy")
    run = tmp_path / "run"
    assert main(["train", "--env", "dm_control/cartpole-swingup-v0", "--run-dir", str(run), "--backend", "inline",
                 "--no-progress", "--steps", "40", "learner.warmup_steps=1000", "run.eval_every=1000",
                 "run.eval_episodes=1", "run.action_repeat=4"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["action_repeat"] == 4 and s["sim_steps"] == 160


def np_finite(x) -> bool:
    return x is not None and abs(float(x)) < float("inf")


TABLE = ["dm_control/cartpole-swingup-v0", "dm_control/pendulum-swingup-v0", "dm_control/cheetah-run-v0",
         "dm_control/walker-walk-v0", "dm_control/finger-spin-v0", "dm_control/reacher-easy-v0",
         "dm_control/hopper-stand-v0", "dm_control/ball_in_cup-catch-v0", "HalfCheetah-v5", "Hopper-v5"]


def test_one_agent_configuration_for_every_task_of_the_table() -> None:
    """What `ami train` resolves for the agent is the same on every task: the networks' input and output widths
    come from the spaces when the agent is built, and the one field that differs is the discount, by the
    configurator's formula from the episode length (TD-MPC2's heuristic)."""
    pytest.importorskip("shimmy")
    import dataclasses

    from ami.cluster.resolve import resolve_run

    agents = {}
    for env_id in TABLE:
        res = resolve_run([{"run": {"env_id": env_id}}])
        info, a = res.info, dataclasses.asdict(res.agent)
        horizon = info.max_episode_steps / 5
        assert a["cost"].pop("gamma") == pytest.approx(min(max((horizon - 1) / horizon, 0.95), 0.995))
        agents[env_id] = a
    first = agents[TABLE[0]]
    assert all(a == first for a in agents.values())
