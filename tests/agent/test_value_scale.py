"""The critic's value scale (raw cost units): the running mean |step cost| / (1 - gamma) that values are regressed
in units of, carried with the weights, and absent from old checkpoints without harm."""

from __future__ import annotations

import torch

from ami.agent.config import CostConfig
from ami.agent.cost import Critic


def critic(**kw) -> Critic:
    return Critic(3, 1, 8, CostConfig(critic_symlog=False, gamma=0.99, **kw))


def test_the_scale_is_the_mean_step_cost_over_one_minus_gamma_where_valid() -> None:
    c = critic()
    cost = torch.tensor([[5.0, -5.0, 1e6]])  # the masked step must not count
    valid = torch.tensor([[True, True, False]])
    c.track_scale(cost, valid)
    assert torch.isclose(c.value_scale, torch.tensor(500.0), rtol=1e-3)  # bias-corrected: right from the first batch
    for _ in range(3000):  # the costs double: the scale follows them within a few thousand updates
        c.track_scale(2 * cost, valid)
    assert torch.isclose(c.value_scale, torch.tensor(1000.0), rtol=0.06)
    q = torch.tensor([-300.0, 0.0, 1234.5])
    assert torch.allclose(c.encode_value(q), q / c.value_scale)
    assert torch.allclose(c.decode_value(c.encode_value(q)), q)


def test_small_costs_keep_values_in_cost_units_and_symlog_or_no_scaling_leave_the_scale_alone() -> None:
    c = critic()
    c.track_scale(torch.full((2, 3), 1e-4), torch.ones(2, 3, dtype=torch.bool))
    assert c.value_scale.item() == 1.0  # at least 1: never blown up
    for cfg in (dict(critic_symlog=True), dict(critic_symlog=False, critic_value_scale=False)):
        c = Critic(3, 1, 8, CostConfig(**cfg))
        c.track_scale(torch.full((2, 3), 5.0), torch.ones(2, 3, dtype=torch.bool))
        assert c.value_scale.item() == 1.0 and c.scale_updates.item() == 0.0


def test_the_scale_travels_with_the_weights_and_old_checkpoints_load_without_it() -> None:
    c = critic()
    c.track_scale(torch.full((1, 4), 3.0), torch.ones(1, 4, dtype=torch.bool))
    other = critic()
    other.load_state_dict(c.state_dict())  # a broadcast or a checkpoint: the actor decodes as the learner does
    assert other.value_scale.item() == c.value_scale.item() and abs(c.value_scale.item() - 300.0) < 0.3
    s, a = torch.randn(5, 3), torch.randn(5, 1)
    assert torch.equal(other(s, a), c(s, a))
    old = {k: v for k, v in c.state_dict().items() if k not in ("abs_cost_ema", "scale_updates", "value_scale")}
    fresh = critic()
    fresh.load_state_dict(old)  # strict: a checkpoint from before the scale still loads
    assert fresh.value_scale.item() == 1.0 and fresh.scale_updates.item() == 0.0
