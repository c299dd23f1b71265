"""Spaces users bring: Discrete, MultiBinary, MultiDiscrete and Tuple observations, MultiBinary and MultiDiscrete
actions are adapted to what the agent models and train through `ami train`; the rest exits 2 with one line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from ami.cluster.cli import main
from ami.envs.spaces import UnsupportedSpace, action_adapter, observation_adapter

TINY = ["--backend", "inline", "--steps", "200", "--seed", "0", "--no-progress", "run.eval_every=200",
        "run.eval_episodes=1", "learner.warmup_steps=100", "learner.batch_size=16", "agent.world_model.hidden=16",
        "agent.encoder.hidden=16", "agent.world_model.latent_dim=8", "run.plan_evals=64"]


def test_observations_become_boxes_and_dicts() -> None:
    disc = observation_adapter(spaces.Discrete(4, start=1))
    assert disc.space == spaces.Box(0.0, 1.0, (4,), np.float32)
    assert disc.convert(np.int64(3)).tolist() == [0, 0, 1, 0]  # value 3 of {1, 2, 3, 4}
    multi = observation_adapter(spaces.MultiDiscrete([2, 3]))
    assert multi.convert(np.array([1, 2])).tolist() == [0, 1, 0, 0, 1]
    assert observation_adapter(spaces.MultiBinary(3)).convert(np.array([1, 0, 1])).tolist() == [1, 0, 1]
    tup = observation_adapter(spaces.Tuple((spaces.Box(-1, 1, (2,), np.float64), spaces.Discrete(2))))
    assert set(tup.space.spaces) == {"0", "1"} and tup.space["0"].dtype == np.float32
    seen = tup.convert((np.array([0.5, -0.5]), 1))
    assert seen["0"].dtype == np.float32 and seen["1"].tolist() == [0, 1] and tup.space.contains(seen)
    assert observation_adapter(spaces.Box(0, 255, (8, 8, 3), np.uint8)) is None  # images stay as they are
    with pytest.raises(UnsupportedSpace, match="Text"):
        observation_adapter(spaces.Text(5))


def test_multi_actions_are_searched_as_boxes_and_reach_every_value() -> None:
    md = action_adapter(spaces.MultiDiscrete([3, 2], start=[1, 0]))
    assert md.space == spaces.Box(-1.0, 1.0, (2,), np.float32)
    grid = np.linspace(-1, 1, 61)
    hit = {tuple(md.convert(np.array([x, y]))) for x, y in itertools.product(grid, grid)}
    assert hit == {(i, j) for i in (1, 2, 3) for j in (0, 1)}  # every action reachable, nothing outside
    mb = action_adapter(spaces.MultiBinary(3))
    assert mb.convert(np.array([0.3, -0.2, 1.0])).tolist() == [1, 0, 1]
    shifted = action_adapter(spaces.Discrete(3, start=-1))
    assert shifted.space == spaces.Discrete(3) and int(shifted.convert(0)) == -1
    assert action_adapter(spaces.Discrete(3)) is None
    with pytest.raises(UnsupportedSpace):
        action_adapter(spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))))


@pytest.mark.parametrize("env", ["FrozenLake-v1", "tests.envs.registering:test/Spaces-v0"])
def test_ami_train_acts_and_learns_in_adapted_spaces(tmp_path: Path, env: str) -> None:
    extra = [] if env == "FrozenLake-v1" else ["run.env_kwargs={action: multidiscrete}"]
    run = tmp_path / "run"
    assert main(["train", "--env", env, "--run-dir", str(run), *TINY, *extra]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 200 and summary["updates"] == 101  # acted (the env checks each action)
    assert np.isfinite(summary["eval_return_mean"])


def test_multibinary_actions_train_too(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--env", "tests.envs.registering:test/Spaces-v0", "--run-dir", str(run), *TINY,
                 "run.env_kwargs={action: multibinary}", "--steps", "120"]) == 0
    assert json.loads((run / "summary.json").read_text())["updates"] == 21


def test_an_unsupported_space_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--env", "tests.envs.registering:test/Text-v0", "--run-dir", str(run), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "observation space Text" in err and "\n" not in err
    assert not run.exists()
