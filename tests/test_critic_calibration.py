"""benchmarks/critic_calibration.py's ground truth: the return that followed each replay row, and which rows it is
exact for (no figure may lean on the critic it judges)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "critic_calibration", Path(__file__).resolve().parents[1] / "benchmarks" / "critic_calibration.py")
cc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cc)


def test_terminated_episodes_are_exact_and_rows_near_a_cut_are_left_out() -> None:
    gamma = 0.5  # gamma^k < 0.01 from k = 7 on
    # a 3-step episode that terminates, then a 10-step one cut by truncation (or the tail's end)
    reward = np.array([1.0, 2.0, 4.0] + [1.0] * 10)
    term = np.array([False, False, True] + [False] * 10)
    breaks = np.array([False, False, True] + [False] * 9 + [True])
    g, exact = cc.returns_that_followed(reward, term, breaks, gamma)
    assert np.allclose(g[:3], [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4])  # nothing after the termination
    assert exact[:3].all()
    assert g[3] == sum(0.5 ** k for k in range(10))
    assert exact[3:].tolist() == [True] * 4 + [False] * 6  # 10, 9, 8, 7 steps before the cut: exact enough


def test_a_jump_in_the_observations_breaks_the_episode() -> None:
    obs = np.array([[0.0], [1.0], [5.0], [6.0]])
    nxt = np.array([[1.0], [2.0], [6.0], [7.0]])  # row 1 leads to 2.0, but row 2 starts at 5.0: a reset or resume
    cols = {"obs": obs, "next_obs": nxt, "terminated": np.zeros(4, bool), "truncated": np.zeros(4, bool),
            "reward": np.zeros(4)}
    assert cc.episode_breaks(cols).tolist() == [False, True, False, True]
    dict_cols = {"obs.a": obs, "obs.b": obs[:, 0], "next_obs.a": nxt, "next_obs.b": nxt[:, 0],
                 **{k: cols[k] for k in ("terminated", "truncated", "reward")}}
    assert cc.episode_breaks(dict_cols).tolist() == [False, True, False, True]
