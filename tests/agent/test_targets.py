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


def _targets_with_critic_output(x: float, bounds=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TD targets of a batch of random Pendulum play when every target critic member outputs x (symlog space):
    (targets, mask, the step costs seen); `bounds`: replaces the updater's value bounds."""
    from ami.agent.update import Updater, _flat
    from tests.agent.helpers import batch_dict, random_replay, tiny_agent

    agent = tiny_agent("Pendulum-v1")
    for m in agent.critic.targets:
        torch.nn.init.zeros_(m[-1].weight)
        torch.nn.init.constant_(m[-1].bias, x)
    upd = Updater(agent)
    if bounds is not None:
        upd._value_bounds = lambda cost, mask: bounds
    obs, next_obs, act, env_cost, term, mask, _ = upd._tensors(batch_dict(random_replay("Pendulum-v1", agent, 400),
                                                                          32, 3))
    with torch.no_grad():
        nxt = agent.world_model.encode_target(_flat(next_obs, *mask.shape)).view(*mask.shape, -1)
        y = upd._td_targets(nxt, env_cost, act, term, mask)
    return y, mask, agent.cost.observed(env_cost, act)


def test_bootstrapped_values_stay_within_what_the_seen_costs_allow() -> None:
    """A critic that has run away (values of e^40 either way) cannot carry its error into the TD targets: each lies
    in [min(lo, 0), max(hi, 0)] / (1 - gamma) of the step costs seen, and a value inside is used as it is."""
    gamma = 0.975  # the configurator's discount for Pendulum's 200-step episodes
    for x in (40.0, -40.0):
        y, mask, cost = _targets_with_critic_output(x)
        lo, hi = cost[mask > 0].min().clamp(max=0) / (1 - gamma), cost[mask > 0].max().clamp(min=0) / (1 - gamma)
        valid = y[mask > 0]
        assert valid.max() <= hi * 1.0001 and valid.min() >= lo * 1.0001 - 1e-4, (x, valid.min(), valid.max(), lo, hi)
    inside = float(torch.log1p(torch.tensor(100.0)))  # the members say 100 cost units: within Pendulum's bounds
    y, mask, _ = _targets_with_critic_output(inside)
    free, _, _ = _targets_with_critic_output(inside, (torch.tensor(float("-inf")), torch.tensor(float("inf"))))
    assert torch.equal(y, free)


def test_the_pessimistic_target_runs_over_the_members_drawn() -> None:
    # members set to constant costs 0..4: the worst of all is 4; the worst of 2 drawn is 4 only when 4 is drawn
    from ami.agent.config import CostConfig
    from ami.agent.cost import Critic

    def critic(k: int) -> Critic:
        c = Critic(3, 1, 8, CostConfig(critic_ensemble=5, target_members=k, critic_symlog=False))
        for i, m in enumerate(c.targets):
            torch.nn.init.zeros_(m[-1].weight)
            torch.nn.init.constant_(m[-1].bias, float(i))
        return c

    s, a = torch.zeros(4, 3), torch.zeros(4, 1)
    assert torch.equal(critic(0).target(s, a), torch.full((4,), 4.0))
    torch.manual_seed(0)
    drawn = [float(critic(2).target(s, a)[0]) for _ in range(200)]
    # max of 2 of 5 distinct values: 1, 2, 3 or 4 with odds 1:2:3:4 -- never 0, and often below the worst
    assert set(drawn) == {1.0, 2.0, 3.0, 4.0} and 0.3 < drawn.count(4.0) / 200 < 0.5
