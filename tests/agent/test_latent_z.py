"""The latent variable z: on a bimodal env, prior draws of z give predictions near *both* outcomes, while the
model without z predicts the mean, between them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ami.agent.update import Updater
from tests.agent.helpers import batch_dict, random_replay, tiny_agent

ENV = "ami/Bimodal-v0"


@pytest.fixture(scope="module")
def bimodal_data():
    return random_replay(ENV, tiny_agent(ENV), 4000)


def _outcomes(agent, x: float = 0.0, draws: int = 200):
    """Predicted next latents from x with a=0 under `draws` prior z draws, and the two true outcomes' latents."""
    wm = agent.world_model
    with torch.no_grad():
        s = wm.encode(torch.tensor([[x]] * draws))
        a = torch.zeros(draws, 1)
        pred = wm.predict(s, a, wm.prior_z((draws,), s.device))
        up, down = wm.encode(torch.tensor([[x + 1.0], [x - 1.0]]))
    return pred.numpy(), up.numpy(), down.numpy()


def _train(agent, data, steps: int = 1500) -> None:
    updater = Updater(agent)
    for _ in range(steps):
        updater.step(batch_dict(data, 128, 1))


def test_z_predictions_cover_both_outcomes(bimodal_data) -> None:
    agent = tiny_agent(ENV, seed=2, z_dim=2, z_kl_weight=0.05, optim=dict(lr=1e-3))
    _train(agent, bimodal_data)
    pred, up, down = _outcomes(agent)
    gap = np.linalg.norm(up - down)
    near_up = np.linalg.norm(pred - up, axis=1) < 0.3 * gap
    near_down = np.linalg.norm(pred - down, axis=1) < 0.3 * gap
    assert near_up.mean() > 0.2 and near_down.mean() > 0.2, (near_up.mean(), near_down.mean())


def test_without_z_prediction_lands_between(bimodal_data) -> None:
    agent = tiny_agent(ENV, seed=2, z_dim=0, optim=dict(lr=1e-3))
    # 400 updates: the mean is learnt early (seeds 2 / 0 / 1 at 400: 0.05 / 0.01 / 0.05 of the gap from the
    # midpoint, bound 0.25; 0.50 / 0.49 / 0.47 from the nearer outcome, bound 0.3); the z test keeps its 1500
    # (seed 2: 0.35 / 0.43 of draws near each outcome at 1500, bound 0.2; 0.33 / 0.34 at 1000)
    _train(agent, bimodal_data, steps=400)
    pred, up, down = _outcomes(agent, draws=1)
    gap = np.linalg.norm(up - down)
    mid = 0.5 * (up + down)
    assert np.linalg.norm(pred[0] - mid) < 0.25 * gap
    assert min(np.linalg.norm(pred[0] - up), np.linalg.norm(pred[0] - down)) > 0.3 * gap
