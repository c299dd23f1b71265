"""What planning reads of the agent: `PlanParts` (its modules and the few numbers of its config), and
`LatentModel`, which adapts them to the planner's PlanModel protocol. The planners' models get these parts, never
the whole Agent, so nothing below the Agent reaches back into it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ami.agent.actions import ActionSpec
from ami.agent.config import AgentConfig
from ami.agent.cost import Critic, IntrinsicCost
from ami.agent.policy import Policy
from ami.agent.world_model import WorldModel


def count_evals(counter: dict[str, int], level: str, n: int) -> None:
    """Add n world-model evaluations to counter[level] (benchmarks compare planners at equal compute). Not
    counted inside a compiled search (`agent.compile`), where a Python side effect would split the graph."""
    if not torch.compiler.is_compiling():
        counter[level] = counter.get(level, 0) + n


@dataclass(frozen=True)
class PlanParts:
    """The modules and settings that planning reads."""

    world_model: WorldModel
    cost: IntrinsicCost
    critic: Critic
    policy: Policy
    action: ActionSpec
    cfg: AgentConfig
    goal_conditioned: bool
    """Reward-free goal reaching: no critic, no done head, no mode-1 proposals."""
    counter: dict[str, int] = field(default_factory=dict)
    """World-model evaluations of the flat planner (benchmarks compare planners at equal compute)."""

    def value(self, s: torch.Tensor) -> torch.Tensor:
        """Cost-to-go V(s) = Q(s, pi(s)); the exact expectation over actions for Discrete."""
        if self.action.discrete:
            return (self.policy.probs(s) * self.critic.every_action(s, self.action.dim)).sum(-1)
        return self.critic(s, self.policy.sample(s, greedy=True)[0])


@dataclass
class OnParts:
    """A PlanModel over level-1 latents: the agent's action space and latent variable."""

    parts: PlanParts

    @property
    def action(self) -> ActionSpec:
        return self.parts.action

    @property
    def z_dim(self) -> int:
        return self.parts.world_model.z_dim


@dataclass
class LatentModel(OnParts):
    """Adapts world model + intrinsic cost + critic + mode-1 to the planner's PlanModel protocol."""

    goal: torch.Tensor | None = None

    @property
    def gamma(self) -> float:
        return self.parts.cfg.cost.gamma

    def _goal(self, s: torch.Tensor) -> torch.Tensor | None:
        if self.goal is None:
            return None
        # candidates of env i are laid out contiguously: repeat each env's goal to match
        return self.goal.repeat_interleave(s.shape[0] // self.goal.shape[0], dim=0)

    def step(self, s, a, z):
        p = self.parts
        wm = p.world_model
        count_evals(p.counter, "level1", s.shape[0])
        sa = torch.cat([s, a], -1)  # one input for predictor, cost head and done head
        c = p.cost(s, a, self._goal(s), sa=sa)
        if p.goal_conditioned:  # reward-free: the done head never learned anything, episodes go on
            return wm.predict(s, a, z, sa=sa), c, torch.ones_like(c)
        return wm.predict(s, a, z, sa=sa), c, wm.continue_prob(s, a, sa=sa)

    def terminal(self, s: torch.Tensor) -> torch.Tensor:
        p = self.parts
        if p.goal_conditioned:  # no critic of goal distance (it would need the goal as input): charge s_H
            return p.cfg.cost.goal_weight * p.cost.goal_distance(s, self._goal(s))
        return p.value(s)

    def propose(self, s: torch.Tensor) -> torch.Tensor | None:
        if self.parts.goal_conditioned:  # mode-1 is trained on the critic, which knows no goals
            return None
        return self.parts.policy.sample(s)[0]

    def propose_greedy(self, s: torch.Tensor) -> torch.Tensor:
        return self.parts.policy.sample(s, greedy=True)[0]
