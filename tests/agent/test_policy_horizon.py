"""Mode-1 with a horizon (`agent.optim.policy_horizon`): its objective is the planner's cost of its own actions
rolled through the world model, so it learns from the model's step costs where the critic tells it nothing, and
only mode-1 moves."""

from __future__ import annotations

import dataclasses

import torch

from ami.agent.config import problems
from ami.agent.latent_model import LatentModel
from ami.agent.planner import rollout_cost
from ami.agent.update import Updater
from tests.agent.helpers import batch_dict, random_replay, tiny_agent


def _greedy_cost(agent, s: torch.Tensor, horizon: int) -> float:
    """The planner's cost of mode-1's mean actions over `horizon` steps from s."""
    with torch.no_grad():
        act = lambda _t, st: agent.policy.sample(st, greedy=True)[0]  # noqa: E731
        return float(rollout_cost(LatentModel(agent.parts), s, act, horizon).mean())


def _trained_mode1(horizon: int) -> tuple[float, float, list[str]]:
    """Model trained briefly on random Pendulum play, critic then made constant (it says nothing of actions),
    300 mode-1 steps without the entropy bonus: (3-step cost of mode-1's actions before, after, the tensors
    other than mode-1's that moved)."""
    agent = tiny_agent("Pendulum-v1", seed=0, optim={"policy_horizon": horizon, "entropy_coef": 0.0})
    replay = random_replay("Pendulum-v1", agent, 2000)
    upd = Updater(agent)
    for _ in range(30):
        upd.step(batch_dict(replay, 64, 3))
    with torch.no_grad():
        for member in agent.critic.members:
            last = [m for m in member.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.weight.zero_()
        upd.policy_opt.state.clear()  # no momentum carried over from the updates above
        s = agent.world_model.encode(torch.as_tensor(batch_dict(replay, 256, 3)["obs"][:, 0]))
    frozen = {k: v.clone() for k, v in agent.state_dict().items() if not k.startswith("policy.")}
    before = _greedy_cost(agent, s, 3)
    zs = s[:, None].expand(-1, 3, -1).contiguous()
    for _ in range(300):
        upd._policy_step(zs, torch.zeros(256, 3, 1), torch.ones(256, 3))
    moved = [k for k, v in agent.state_dict().items() if k in frozen and not torch.equal(v, frozen[k])]
    return before, _greedy_cost(agent, s, 3), moved


def test_mode1_with_a_horizon_learns_from_the_models_costs_where_the_critic_says_nothing() -> None:
    before, after, moved = _trained_mode1(3)
    assert moved == [], moved
    flat_before, flat_after, _ = _trained_mode1(0)
    assert flat_after == flat_before  # without a horizon a constant critic gives mode-1 no gradient at all
    assert after < before - 0.03 * abs(before), (before, after)


def test_a_negative_policy_horizon_is_a_config_problem() -> None:
    agent = tiny_agent("Pendulum-v1")
    bad = dataclasses.replace(agent.cfg, optim=dataclasses.replace(agent.cfg.optim, policy_horizon=-1))
    assert any("policy_horizon" in p for p in problems(bad))
