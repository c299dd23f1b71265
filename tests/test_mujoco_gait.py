"""benchmarks/mujoco_gait.py reads the gait from the right observation columns: forward velocity per block, falls,
and the episodes spent on the back."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def mg(monkeypatch):
    """The script as `python benchmarks/mujoco_gait.py` sees it: its folder first on the path (sibling imports)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("mujoco_gait")


def test_halfcheetah_blocks_and_an_episode_on_its_back(mg) -> None:
    obs = np.zeros((6, 17))
    obs[:, 8] = [1.0, 1.0, 1.0, 3.0, 3.0, 5.0]  # forward velocity (qvel[0])
    obs[3:, 1] = np.pi  # torso pitch: turned over in the second episode
    cols = {"obs": obs, "reward": np.arange(6.0), "terminated": np.zeros(6, bool)}
    g = mg.gait(cols, np.array([0, 0, 1, 0, 0, 1], bool), "HalfCheetah-v5", block=4)
    assert [b["velocity"] for b in g["blocks"]] == [1.5, 4.0]
    assert [b["on_back"] for b in g["blocks"]] == [0.25, 1.0]
    assert g["episodes"] == [{"return": 3.0, "steps": 3, "on_back": False},
                             {"return": 12.0, "steps": 3, "on_back": True}]


def test_hopper_reads_its_own_columns_and_counts_falls(mg) -> None:
    obs = np.zeros((4, 11))
    obs[:, 5] = [0.5, 0.5, -0.5, -0.5]
    obs[:, 8] = 9.0  # a joint velocity, not the body's
    cols = {"obs": obs, "reward": np.ones(4), "terminated": np.array([0, 1, 0, 1], bool)}
    g = mg.gait(cols, cols["terminated"], "Hopper-v5", block=2)
    assert [(b["velocity"], b["falls"]) for b in g["blocks"]] == [(0.5, 1), (-0.5, 1)]
    assert [e["steps"] for e in g["episodes"]] == [2, 2]


def test_an_env_without_a_known_body_is_refused_in_one_line(mg) -> None:
    with pytest.raises(SystemExit, match="dm_control/cheetah-run-v0: no gait read"):
        mg.pose_columns("dm_control/cheetah-run-v0")
