"""The planner against a known differentiable model: linear dynamics, quadratic cost, the Riccati terminal cost.

With terminal cost s'Ps (P from the discrete algebraic Riccati equation) the H-step problem has the same first
action as infinite-horizon LQR, a* = -K s, so every planner must return it within tolerance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ami.agent import planner as planner_module
from ami.agent.actions import ActionSpec
from ami.agent.config import PlannerConfig
from ami.agent.planner import Planner

DT = 0.1
A = np.array([[1.0, DT], [0.0, 1.0]])
B = np.array([[0.0], [DT]])
Q = np.diag([1.0, 0.1])
R = np.array([[0.5]])


def riccati() -> tuple[np.ndarray, np.ndarray]:
    p = Q.copy()
    for _ in range(5000):
        k = np.linalg.solve(R + B.T @ p @ B, B.T @ p @ A)
        p = Q + A.T @ p @ (A - B @ k)
    return p, np.linalg.solve(R + B.T @ p @ B, B.T @ p @ A)


class LinearQuadratic:
    """PlanModel with s' = As + Ba, cost s'Qs + a'Ra, terminal s'Ps, no mode-1 proposals."""

    action = ActionSpec(False, 1, (-1.0,), (1.0,))
    z_dim = 0
    gamma = 1.0

    def __init__(self, p: np.ndarray):
        self.a, self.b = torch.tensor(A, dtype=torch.float32), torch.tensor(B, dtype=torch.float32)
        self.q, self.r = torch.tensor(Q, dtype=torch.float32), torch.tensor(R, dtype=torch.float32)
        self.p = torch.tensor(p, dtype=torch.float32)

    def step(self, s, a, z):
        cost = ((s @ self.q) * s).sum(-1) + ((a @ self.r) * a).sum(-1)
        return s @ self.a.T + a @ self.b.T, cost, torch.ones_like(cost)

    def terminal(self, s):
        return ((s @ self.p) * s).sum(-1)

    def propose(self, s):
        return None


STATES = np.array([[0.2, 0.0], [-0.1, 0.3], [0.05, -0.35]])
BASE = PlannerConfig(horizon=5, samples=512, elites=64, iterations=10, policy_samples=0, max_std=1.0,
                     min_std=0.01, grad_steps=200, grad_lr=0.05)


@pytest.mark.parametrize("kind", ["mppi", "cem", "grad", "mppi+grad"])
def test_first_action_matches_lqr(kind: str) -> None:
    torch.manual_seed(0)
    p, k = riccati()
    a_star = -(STATES @ k.T)[:, 0]
    assert np.all(np.abs(a_star) < 0.9), "the test states must keep the optimum inside the action box"
    model = LinearQuadratic(p)
    planner = Planner(dataclasses.replace(BASE, kind=kind), model.action)
    a0, plan, cost = planner.plan(model, torch.tensor(STATES, dtype=torch.float32))
    got = a0[:, 0].numpy()
    np.testing.assert_allclose(got, a_star, atol=0.03)
    assert plan.shape == (3, 5, 1) and cost.shape == (3,)


def test_the_compiled_search_finds_the_lqr_action_too(monkeypatch) -> None:
    # agent.compile: the same MPPI search captured as one graph, no break (its random stream differs, its answer
    # must not); with the Riccati terminal cost any horizon has the LQR first action. The graph runs on aot_eager:
    # inductor's C++ compilation costs ~30 s on a fresh machine (on inductor this test passed here, 2026-12-02)
    monkeypatch.setattr(planner_module, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    torch.manual_seed(0)
    p, k = riccati()
    a_star = -(STATES @ k.T)[:, 0]
    model = LinearQuadratic(p)
    planner = Planner(dataclasses.replace(BASE, kind="mppi", horizon=1, iterations=4), model.action, compile=True)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    a0, plan, cost = planner.plan(model, torch.tensor(STATES, dtype=torch.float32))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs + 1  # compiled, as one graph
    np.testing.assert_allclose(a0[:, 0].numpy(), a_star, atol=0.03)
    assert plan.shape == (3, 1, 1) and cost.shape == (3,)


def test_random_first_action_is_far_from_lqr() -> None:
    """The tolerance above is meaningful: a planner that ignored the model would miss it."""
    p, k = riccati()
    a_star = -(STATES @ k.T)[:, 0]
    assert np.abs(a_star).min() > 0.1
