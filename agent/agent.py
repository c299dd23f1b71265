"""The Agent facade: perception -> world model -> cost -> planner (agent/update.py trains it: the learner owns that)."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from ami.agent.actions import ActionSpec
from ami.agent.belief import History, belief_space
from ami.agent.config import AgentConfig, PlannerConfig
from ami.agent.cost import Critic, IntrinsicCost
from ami.agent.fastmath import fast_fp32_matmul
from ami.agent.goal import goal_conditioned, goal_obs, state_obs, state_space
from ami.agent.hierarchy import Level2, TwoLevelPlanner
from ami.agent.latent_model import LatentModel, PlanParts
from ami.agent.perception import obs_to_tensor
from ami.agent.planner import Planner
from ami.agent.policy import Policy
from ami.agent.short_term import ShortTermMemory
from ami.agent.world_model import WorldModel


class Agent(torch.nn.Module):
    """Owns every module and acts (`act`); the learner trains it through an `agent.update.Updater`. Device is
    passed in, never assumed."""

    def __init__(self, obs_space: spaces.Space, action_space: spaces.Space, cfg: AgentConfig,
                 device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg = cfg
        self.obs_space = obs_space
        self.action = ActionSpec.from_space(action_space)
        wm = cfg.world_model
        # goal tasks on {'observation', 'goal'} spaces: the world model sees the state part only, and the goal
        # observation goes through the same encoder to give the goal latent
        self.goal_conditioned = goal_conditioned(cfg.cost.goal_weight, obs_space)
        self.belief = cfg.belief == "on"  # s_t from the recent history (agent/belief.py), else from obs_t alone
        seen = state_space(obs_space) if self.goal_conditioned else obs_space
        if self.belief:
            seen = belief_space(obs_space, self.action.dim, cfg.history)
        self.world_model = WorldModel(seen, self.action, cfg.encoder, wm)
        self.cost = IntrinsicCost(wm.latent_dim, self.action.dim, wm.hidden, cfg.cost)
        self.critic = Critic(wm.latent_dim, self.action.dim, wm.hidden, cfg.cost)
        self.policy = Policy(wm.latent_dim, self.action, wm.hidden)
        self.planner = Planner(cfg.planner, self.action, cfg.compile)
        hc = cfg.hierarchy
        if hc.enabled and not self.goal_conditioned:
            raise ValueError("hierarchy.enabled needs a goal task on a {'observation', 'goal'} space")
        # level 2 exists only when enabled, so reward-task weights and snapshots are unchanged
        self.hierarchy = Level2(wm.latent_dim, self.action.dim, hc) if hc.enabled else None
        if self.hierarchy is not None:
            self.hierarchy.low_action = self.action
        self.two_level = TwoLevelPlanner(hc) if hc.enabled else None
        # what the planners' models read (the modules themselves, shared: weights loaded later are seen)
        self.parts = PlanParts(self.world_model, self.cost, self.critic, self.policy, self.action, cfg,
                               self.goal_conditioned)
        self.device = torch.device(device)
        self.to(self.device)
        if cfg.compile and self.device.type != "cpu":
            # in place (nn.Module.compile), so state_dict keys and snapshots stay the same; not on a CPU, where
            # the per-module guards cost more than the fusion saves (measured: update 23.4 vs 18.3 ms eager)
            for m in (self.world_model.encoder, self.world_model.predictor, self.world_model.done_head,
                      self.cost.task_head, *self.critic.members, self.policy.net):
                m.compile()

    # ----- acting -------------------------------------------------------------------------------------------
    @property
    def plan_counter(self) -> dict[str, int]:
        """World-model evaluations by the flat planner (benchmarks)."""
        return self.parts.counter

    def set_planner(self, cfg: PlannerConfig) -> None:
        """Swap the planning budget at run time (the configurator's modulation)."""
        self.planner = Planner(cfg, self.action, self.cfg.compile)

    def act(self, obs, short_term: ShortTermMemory, explore: bool = True) -> np.ndarray:
        """Observation batch [E, ...] -> env actions [E, ...]; updates short-term memory."""
        # inference mode skips autograd's version counters; gradient planning needs autograd inside the plan
        grad = self.planner.cfg.kind.endswith("grad")
        rows = self.planner.rows(short_term.num_envs)
        with torch.no_grad() if grad else torch.inference_mode(), fast_fp32_matmul(self.device, rows):
            return self._act(obs, short_term, explore)

    def belief_columns(self, obs, short_term: ShortTermMemory) -> dict[str, np.ndarray]:
        """The history the next act() sees, as the replay columns the runner stores with the step ({} without a
        belief state): the learner encodes exactly what the actor saw."""
        return self._history(obs, short_term).columns() if self.belief else {}

    def observe(self, obs, env_action: np.ndarray, short_term: ShortTermMemory) -> None:
        """The step taken in `obs` enters the history (act() calls it; so does the runner for random play). The
        action goes in as the learner will read it back from the replay: env units through `to_model`."""
        if self.belief:
            self._history(obs, short_term).push(obs, self.action.to_model(env_action, "cpu").numpy())

    def _history(self, obs, short_term: ShortTermMemory) -> History:
        if short_term.belief is None:  # made on first use: short-term memory knows no observation shapes
            obs = np.asarray(obs)
            short_term.belief = History(len(obs), self.cfg.history, obs.shape[1:], self.action.dim)
        return short_term.belief

    def _act(self, obs, short_term: ShortTermMemory, explore: bool) -> np.ndarray:
        if self.belief:
            h = self._history(obs, short_term)  # read in place: push() replaces its arrays, never writes them
            s = self.world_model.encode(obs_to_tensor({"obs": obs, "past_obs": h.obs, "past_act": h.act}, self.device))
            env_action = self.action.to_env(self._plan(s, short_term, explore))
            self.observe(obs, env_action, short_term)
            return env_action
        x = obs_to_tensor(obs, self.device)
        if self.goal_conditioned:
            s = self.world_model.encode(state_obs(x))
            short_term.goal = self.world_model.encode(goal_obs(x))
            if self.two_level is not None:
                return self.action.to_env(self.two_level.act(self.parts, self.hierarchy, self.planner, s,
                                                             short_term.goal, short_term, explore))
        else:
            s = self.world_model.encode(x)
        return self.action.to_env(self._plan(s, short_term, explore))

    def _plan(self, s: torch.Tensor, short_term: ShortTermMemory, explore: bool) -> torch.Tensor:
        """Plan from latent s and the warm start, and record: the first actions in model units."""
        model = LatentModel(self.parts, short_term.goal)
        a0, plan, cost = self.planner.plan(model, s, short_term.warm_start(self.planner), explore)
        short_term.record(s, a0, plan, cost)
        return a0

    # ----- weights ------------------------------------------------------------------------------------------
    def weights(self) -> dict[str, torch.Tensor]:
        """CPU copy of every tensor needed to act (the snapshot actors receive)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items()}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(weights)
