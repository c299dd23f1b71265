"""Learning by watching (agent/pretrain.py): from observations alone, the inferred latent action comes to tell
the real action it stands for, and a model without latent actions keeps its weights' layout."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from ami.agent.agent import Agent
from ami.agent.configurator import ComputeBudget, configure
from ami.agent.pretrain import PassiveUpdater, load_pretrained, pretrained_weights
from ami.memory.passive import Windows
from tests.agent.helpers import random_pendulum_play


def _agent(latent: int, seed: int = 0) -> Agent:
    torch.manual_seed(seed)
    env = gym.make("Pendulum-v1")
    cfg = configure(env.observation_space, env.action_space, budget=ComputeBudget(plan_evals=256))
    wm = dataclasses.replace(cfg.world_model, latent_action_dim=latent)
    return Agent(env.observation_space, env.action_space, dataclasses.replace(cfg, world_model=wm))


def test_the_latent_action_comes_to_tell_the_unseen_action() -> None:
    agent = _agent(1)
    wm = agent.world_model
    upd = PassiveUpdater(wm, agent.cfg.optim.lr, agent.cfg.optim.grad_clip, agent.device)
    windows = Windows([o for o, _ in random_pendulum_play(20, 0)], 4, seed=0)
    held_out = random_pendulum_play(4, 1)

    def probe_r2() -> float:
        with torch.no_grad():
            s = [wm.encode(torch.as_tensor(o)) for o, _ in held_out]
            u = np.concatenate([wm.infer_action(x[:-1], x[1:])[1].numpy() for x in s])
        a = np.concatenate([a for _, a in held_out])[:, 0]
        x = np.c_[u, np.ones(len(u))]
        n = len(a) // 2
        w = np.linalg.lstsq(x[:n], a[:n], rcond=None)[0]
        return float(1 - (a[n:] - x[n:] @ w).var() / a[n:].var())

    before = probe_r2()
    first = upd.step(windows.sample(128))
    for _ in range(999):
        last = upd.step(windows.sample(128))
    after = probe_r2()
    assert last["loss_prediction"] < 0.2 * first["loss_prediction"]
    assert last["loss_latent_action"] > 0.5, last  # u carries information (nats) ...
    # ... and it is about the action (measured here: R^2 -0.004 before, 0.502 after 1000 updates; 0.557 after 1500)
    assert after >= 0.4 and before <= 0.2, (before, after)


def test_latent_actions_are_absent_unless_asked_for() -> None:
    plain, latent = _agent(0), _agent(1)
    assert not any("action_posterior" in k or "action_adapter" in k for k in plain.state_dict())
    assert plain.world_model.predictor[0].in_features == 64 + 1  # s and the real action, as before
    assert latent.world_model.predictor[0].in_features == 64 + 1  # s and u (one per action dimension)
    s, a = torch.zeros(5, 64), torch.ones(5, 1)
    expect = latent.world_model.predict_latent(s, latent.world_model.action_adapter(a))
    torch.testing.assert_close(latent.world_model.predict(s, a), expect)  # real actions go through the adapter


def test_loading_pretrained_weights_checks_their_shapes() -> None:
    src, dst = _agent(1, seed=0), _agent(1, seed=1)
    load_pretrained(dst, pretrained_weights(src.state_dict()))
    assert all(torch.equal(v, dst.state_dict()[k]) for k, v in pretrained_weights(src.state_dict()).items())
    with pytest.raises(ValueError, match="lack"):
        load_pretrained(_agent(1), pretrained_weights(_agent(0).state_dict()))
