"""Critic targets: n-step sums within the window, cut at episode ends, bootstrapped from the last step used."""

from __future__ import annotations

import torch

from ami.agent.update import bootstrap_positions, n_step_targets


def test_n_step_targets_sum_costs_and_bootstrap() -> None:
    g = 0.5
    cost = torch.tensor([[1.0, 2.0, 4.0]])
    v = torch.tensor([[10.0, 20.0, 40.0]])
    ones = torch.ones(1, 3)
    zeros = torch.zeros(1, 3)
    y = n_step_targets(cost, zeros, ones, v, g, n_step=3)
    assert torch.allclose(y, torch.tensor([[1 + g * 2 + g**2 * 4 + g**3 * 40, 2 + g * 4 + g**2 * 40, 4 + g * 40]]))
    y1 = n_step_targets(cost, zeros, ones, v, g, n_step=1)
    assert torch.allclose(y1, cost + g * v)


def test_n_step_targets_stop_at_termination_and_masked_steps() -> None:
    g = 0.5
    cost = torch.tensor([[1.0, 2.0, 4.0]])
    v = torch.tensor([[10.0, 20.0, 40.0]])
    term = torch.tensor([[0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the episode ended at step 1: step 2 belongs to no one
    y = n_step_targets(cost, term, mask, v, g, n_step=3)
    assert torch.allclose(y[0, :2], torch.tensor([1 + g * 2, 2.0]))  # no bootstrap past a terminal step
    trunc_mask = torch.tensor([[1.0, 0.0, 0.0]])  # truncated after step 0: bootstrap from V(s'_0)
    y = n_step_targets(cost, torch.zeros(1, 3), trunc_mask, v, g, n_step=3)
    assert torch.allclose(y[0, 0], torch.tensor(1 + g * 10))


def test_values_at_bootstrap_positions_only_give_the_same_targets() -> None:
    # the update evaluates the target critic only where a target reads it; every valid target must be unchanged
    gen = torch.Generator().manual_seed(0)
    b, w = 64, 5
    cost, v = torch.randn(b, w, generator=gen), torch.randn(b, w, generator=gen)
    term = (torch.rand(b, w, generator=gen) < 0.1).float()
    valid = torch.randint(1, w + 1, (b,), generator=gen)  # windows cut by episode or segment ends
    mask = (torch.arange(w)[None] < valid[:, None]).float()
    for n_step in (1, 2, 3, 7):
        full = n_step_targets(cost, term, mask, v, 0.9, n_step)
        pos = bootstrap_positions(mask, n_step)
        assert pos.shape[1] == max(w - n_step + 1, 1)
        sparse_v = torch.zeros(b, w).scatter_(1, pos, v.gather(1, pos))
        sparse = n_step_targets(cost, term, mask, sparse_v, 0.9, n_step)
        assert torch.equal(full[mask > 0], sparse[mask > 0]), n_step
        # and the values do matter: dropping the bootstrap positions changes the targets
        no_bootstrap = n_step_targets(cost, term, mask, torch.zeros(b, w), 0.9, n_step)
        assert not torch.equal(full[mask > 0], no_bootstrap[mask > 0])
