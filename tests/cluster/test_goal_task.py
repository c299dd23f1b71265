"""Goal envs through `ami train`: the task kind is read from the observation space, goal defaults (reward-free
held random exploration, windows for level 2) sit under the user's settings, bad combinations exit 2, and a real
Ray run learns to reach goals and reports `eval_success_rate` in eval lines, summary.json and `ami eval`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import imageio.v2 as imageio
import pytest

from ami.cluster.cli import main
from ami.cluster.config import TrainConfig, build
from ami.cluster.envinfo import EnvInfo, inspect_env
from ami.cluster.resolve import (
    GOAL_RANDOM_REPEAT,
    configure_agent,
    resolve_agent,
    resolve_run,
    task_defaults,
    task_kind,
)
from ami.envs import register_envs


def env(env_id: str) -> EnvInfo:
    register_envs()
    return inspect_env(env_id)


def test_goal_spaces_pick_the_goal_task_and_its_defaults() -> None:
    rooms = env("ami/TwoRooms-v0")
    obs = rooms.observation_space
    cfg = build([{"run": {"env_id": "ami/TwoRooms-v0"}}])
    assert task_kind(cfg, obs) == "goal"
    preset = task_defaults(cfg, obs, configure_agent(cfg, rooms))
    assert preset["runner"] == {"random_repeat": GOAL_RANDOM_REPEAT, "explore": "random"}
    agent = resolve_agent(build([preset, {"run": {"env_id": "ami/TwoRooms-v0"}}]), rooms)
    assert agent.hierarchy.enabled and preset["learner"]["window"] == 2 * agent.hierarchy.k
    assert agent.cost.goal_weight > 0 and agent.cost.task_weight == 0
    # the user's own settings win over the preset
    mine = resolve_run([{"run": {"env_id": "ami/TwoRooms-v0"}}, {"runner": {"random_repeat": 2}}]).cfg
    assert mine.runner.random_repeat == 2 and mine.runner.explore == "random"
    assert mine.learner.window == preset["learner"]["window"]
    assert "run" not in preset  # TwoRooms has no exploration variant
    maze = env("ami/FourRooms-v0")
    m_cfg = build([{"run": {"env_id": "ami/FourRooms-v0"}}])
    m_preset = task_defaults(m_cfg, maze.observation_space, configure_agent(m_cfg, maze))
    assert m_preset["run"] == {"explore_env_id": "ami/FourRoomsExplore-v0"}  # random play that reaches every room
    pend = env("Pendulum-v1")
    assert task_kind(TrainConfig(), pend.observation_space) == "reward"
    assert task_defaults(TrainConfig(), pend.observation_space, configure_agent(TrainConfig(), pend)) == {}


@pytest.mark.parametrize("args, words", [
    (["--env", "Pendulum-v1", "run.task=goal"], "run.task=goal needs a Dict observation space"),
    (["--env", "ami/TwoRooms-v0", "learner.window=4"], "learner.window=4 is too short for level 2"),
    (["--env", "ami/TwoRooms-v0", "runner.explore=curious"], "runner.explore must be"),
    (["--env", "ami/TwoRooms-v0", "run.explore_env_id=Pendulum-v1"], "has other spaces than"),
])
def test_goal_config_errors_exit_2_with_one_line(args, words, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--backend", "inline", "--run-dir", str(run), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
    assert not run.exists()


def test_ray_goal_run_learns_the_open_room_and_reports_success(ray_cluster, redis_server, tmp_path,
                                                                capsys, monkeypatch) -> None:
    """Reward-free: 3000 held-random steps from 2 actors through Redis, 500 updates, then the planner reaches
    goals it was never rewarded for (tests/goal compares the same bar with random play)."""
    run = tmp_path / "open-room"
    rc = main(["train", "--backend", "ray", "--actors", "2", "--env", "ami/OpenRoom-v0", "--steps", "3000",
               "--seed", "0", "--run-dir", str(run), "--redis-url", redis_server.url, "--no-progress",
               "run.eval_every=1500", "run.eval_episodes=20"])
    assert rc == 0
    capsys.readouterr()
    s = json.loads((run / "summary.json").read_text())
    evals = [m for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval_return_mean" in m]
    assert evals and all("eval_success_rate" in m for m in evals)
    assert s["eval_success_rate"] == evals[-1]["eval_success_rate"] >= 0.8, evals
    assert s["updates"] == int((3000 - 1000 + 1) * 0.25)  # the goal replay ratio
    lines = [m for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss_total" in m]
    assert lines and all("loss_policy" not in m for m in lines)  # nothing of the reward is learned
    assert main(["eval", str(run), "--episodes", "10", "--seed", "7"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env_id"] == "ami/OpenRoom-v0" and out["eval_success_rate"] >= 0.7

    # a Dict-observation env on video: one greedy episode as H.264 MP4, every frame of it
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "imageio_ffmpeg", None)  # the video extra not installed: one line, exit 2
        assert main(["eval", str(run), "--episodes", "1", "--video"]) == 2
        err = capsys.readouterr().err.strip()
        assert "ami-agent[video]" in err and "\n" not in err
    assert main(["eval", str(run), "--episodes", "1", "--video"]) == 0
    video = Path(json.loads(capsys.readouterr().out)["video"])
    assert video == run / "eval.mp4"
    frames = imageio.mimread(video, memtest=False)
    assert 2 <= len(frames) <= 101 and frames[0].shape == (64, 64, 3)  # reset + each step; the rooms are 64 px
    assert len({f.tobytes() for f in frames}) > 1  # the point moves
