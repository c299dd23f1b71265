"""Frozen configs of every agent module. The configurator fills them from the env's spaces and a budget."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EncoderConfig:
    """Perception: observation -> feature vector (the JEPA encoder adds the latent head)."""

    kind: str = "auto"
    """'auto' picks from the observation space: 'mlp' for vectors, 'cnn' for uint8 HWC images."""
    hidden: int = 256
    """Width of MLP hidden layers."""
    layers: int = 2
    """Number of MLP hidden layers."""
    cnn_channels: int = 32
    """Channels of each CNN conv layer."""


@dataclass(frozen=True)
class WorldModelConfig:
    """The JEPA: encoder, action-conditioned predictor, latent variable z, and the heads on latents."""

    latent_dim: int = 64
    """Dimension of the representation s."""
    hidden: int = 256
    """Width of predictor / head hidden layers."""
    z_dim: int = 0
    """Dimension of the latent variable z; 0 disables it."""
    z_kl_weight: float = 0.1
    """Weight of KL(q(z|s,a,s') || N(0,I)): the information limit on z."""
    target: str = "sg"
    """Prediction targets: 'sg' online encoder under stop-gradient; 'ema' an EMA copy; 'grad' no stop-gradient
    (PLDM-style: the VICReg terms alone prevent collapse)."""
    target_ema: float = 0.01
    """EMA rate of the target encoder (target='ema' only)."""
    rho: float = 0.5
    """Temporal discount of the multi-step prediction loss (step j weighs rho**j)."""
    var_weight: float = 1.0
    """VICReg variance hinge weight (0 switches the term off)."""
    cov_weight: float = 0.04
    """VICReg covariance weight (0 switches the term off)."""
    pred_weight: float = 20.0
    """Weight of the latent prediction loss."""
    cost_weight: float = 0.5
    """Weight of the immediate-cost (reward) prediction loss."""
    done_weight: float = 1.0
    """Weight of the termination-prediction loss."""
    latent_action_dim: int = 0
    """Dimension of the latent action u that stands for an unseen action (`ami pretrain` on observation-only data,
    agent/pretrain.py); 0 = none. With it the predictor reads u, and a real action a through the adapter u = A(a)."""
    latent_action_kl_weight: float = 0.01
    """Weight of KL(q(u|s,s') || N(0,I)): the information limit that keeps u an action, not a copy of s'. Measured
    on random Pendulum play (tests/agent/test_pretrain.py): at 1.0 u carries ~0 nats and tells nothing of the real
    action; at 0.01 ~2 nats, and a linear probe reads the real action from it."""
    latent_action_align_weight: float = 1.0
    """Weight of ||A(a) - E[q(u|s,s')]||^2 in interaction updates: real actions mapped into the pretrained u space."""


@dataclass(frozen=True)
class CostConfig:
    """Intrinsic cost weights (immutable once the agent is built) and the trainable critic."""

    task_weight: float = 1.0
    """Weight of the task cost (env cost = -reward, predicted in latent space)."""
    goal_weight: float = 0.0
    """Weight of the latent distance to a goal (goal tasks)."""
    energy_weight: float = 0.0
    """Weight of the action energy |a|^2 (in normalised action units)."""
    critic_ensemble: int = 2
    """Critic ensemble size; TD targets take the pessimistic (max-cost) member."""
    target_members: int = 0
    """Members the TD target's pessimistic max runs over, drawn at random each update (0: all of them; TD-MPC2
    takes the worse of 2 drawn from 5, which is less pessimistic than the worst of 5)."""
    gamma: float = 0.99
    """Discount of future cost."""
    n_step: int = 3
    """Real steps summed before bootstrapping in critic targets (bounded by the sampled window)."""
    tau: float = 0.01
    """EMA rate of the critic target networks."""
    critic_weight: float = 0.1
    """Weight of the critic TD loss in the world-model update."""
    critic_symlog: bool = False
    """Regress the critic in symlog space, or (the default since 2026-12-07) in cost units, scaled as
    `critic_value_scale` says. Scaled cost units lifted HalfCheetah-v5 from 695-1192 to 4441 at 20k steps; the
    other tasks screened: RESULTS #9, "Mean-scaled values"."""
    critic_value_scale: bool = True
    """Cost units only: regress values divided by the running mean |step cost| / (1 - gamma) (at least 1),
    so a critic's outputs are O(1) whatever the task's reward scale."""


@dataclass(frozen=True)
class PlannerConfig:
    """Mode-2 planning in latent space, and the mode-1 policy that amortises it."""

    kind: str = "mppi"
    """'mppi' or 'cem' (sampling), 'grad' (descent on actions), 'mppi+grad' (refine), 'policy' (mode-1 only)."""
    horizon: int = 3
    """Planning horizon H in steps."""
    samples: int = 256
    """Sampled action sequences per iteration."""
    policy_samples: int = 16
    """Sequences proposed by rolling the mode-1 policy through the model."""
    elites: int = 32
    """Number of best sequences that refit the sampling distribution."""
    iterations: int = 4
    """Sampling iterations per decision."""
    temperature: float = 0.5
    """Inverse temperature of the elite weights, applied to costs normalised by their spread."""
    min_std: float = 0.05
    """Floor of the sampling std (normalised action units)."""
    max_std: float = 2.0
    """Initial sampling std."""
    grad_steps: int = 10
    """Adam steps of the gradient planner."""
    grad_lr: float = 0.1
    """Learning rate of the gradient planner."""
    z_draws: int = 1
    """Drawings of z from the prior averaged per candidate (when z is enabled)."""
    explore_std: float = 0.3
    """Extra std added to the first action when acting to explore (continuous), or epsilon for discrete."""


@dataclass(frozen=True)
class OptimConfig:
    """How the update step trains."""

    lr: float = 3e-4
    """Adam learning rate of the world model, heads and critic."""
    policy_lr: float = 3e-4
    """Adam learning rate of the mode-1 policy."""
    grad_clip: float = 20.0
    """Max global grad norm."""
    entropy_coef: float = 1e-4
    """Entropy bonus of the mode-1 policy (scaled by the running critic scale)."""
    bc_weight: float = 0.0
    """Behaviour-cloning weight toward the actions the planner took (amortisation)."""
    policy_horizon: int = 0
    """Model steps in mode-1's objective (Box actions): 0 = the critic alone, Q(s, pi(s)) on every latent of the
    window; H > 0 = the planner's own objective (agent/planner.py `rollout_cost`) of mode-1's actions over H steps
    through the world model, then the critic, from each window's first (encoded) latent."""
    health_every: int = 10
    """Updates between two representation-health measurements (embedding std, effective rank: an SVD)."""
    autocast: str = "none"
    """Mixed precision of the update's forward passes: 'none' (float32), 'bf16' or 'fp16' (GPU learners; the
    master weights and the optimiser stay float32)."""


def _level2_planner() -> PlannerConfig:
    return PlannerConfig(horizon=6, samples=64, elites=8, iterations=4, policy_samples=0, explore_std=0.0)


@dataclass(frozen=True)
class HierarchyConfig:
    """H-JEPA level 2 (agent/hierarchy.py): abstract states of k-step windows, k-step macro predictions."""

    enabled: bool = False
    """Build and train level 2 and act with the two-level planner (goal tasks only)."""
    k: int = 4
    """Level-1 steps per level-2 step: the window length and the macro-action's span."""
    latent_dim: int = 16
    """Dimension of the abstract state."""
    macro_dim: int = 2
    """Dimension of the learned latent macro-action (encodes k level-1 actions, squashed to [-1, 1])."""
    hidden: int = 128
    """Width of level-2 networks."""
    z_dim: int = 0
    """Level-2 latent variable z (0 disables); planning averages over planner.z_draws prior drawings."""
    z_kl_weight: float = 0.1
    """Weight of level 2's KL information limit on z."""
    pred_weight: float = 20.0
    """Weight of level 2's k-step prediction loss."""
    var_weight: float = 1.0
    """Level 2's own VICReg variance hinge weight."""
    cov_weight: float = 0.0
    """Level 2's own VICReg covariance weight. Off by default: measured on FourRooms, decorrelating 16 dims
    curls the 2D maze through all of them, so abstract distances to the goal saturate beyond ~2 cells and
    level-2 planning loses its slope; the variance hinge alone keeps level 2 from collapsing."""
    planner: PlannerConfig = field(default_factory=_level2_planner)
    """Level-2 planning over macro-actions (horizon in abstract steps)."""
    macro_proposals: bool = True
    """Score two-segment macro sequences before level 2's MPPI (holds headings that i.i.d. noise rarely does)."""
    replan_every: int = 1
    """Level-1 steps between level-2 replans (1: every step, k: once per abstract step)."""
    goal_weight: float = 0.0
    """Extra weight of level 1's flat goal distance next to the sub-goal cost (0: sub-goals only)."""
    value_weight: float = 0.0
    """Weight of the goal-conditioned critic's loss (agent/goal_value.py; 0: no critic, level 2 plans on the
    latent distance to the goal alone)."""
    value_plan_weight: float = 1.0
    """Weight of the critic's cost-to-go (in abstract steps) in level 2's planning cost, next to the distance."""
    value_gamma: float = 0.95
    """Discount of the critic per abstract step (bounds the cost-to-go of unreachable goals by 1 / (1 - gamma))."""
    value_expectile: float = 0.1
    """Expectile of the critic's TD targets (< 0.5: toward the shortest route in the data)."""
    value_tau: float = 0.01
    """EMA rate of the critic's target copy."""


@dataclass(frozen=True)
class AgentConfig:
    """Every module's config together."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Perception."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """JEPA world model."""
    cost: CostConfig = field(default_factory=CostConfig)
    """Intrinsic cost + critic."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """Planner and mode-1."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Update step."""
    hierarchy: HierarchyConfig = field(default_factory=HierarchyConfig)
    """H-JEPA level 2 and two-level planning (off unless the configurator picks it for a goal task)."""
    compile: bool = False
    """torch.compile the planner's sampling search for Box actions (one graph per env count, ~1 min to compile on a
    CPU, then ~1.7x faster 1-env decisions: pays off on runs of 10k+ steps) and, off the CPU, every network in
    place for the update. Results change only by the random stream and float rounding."""
    belief: str = "auto"
    """State from the recent history (agent/belief.py): 'on', 'off', or 'auto' = on where the env declares itself
    partially observed (metadata 'partially_observed'); `ami train` records what 'auto' became."""
    history: int = 4
    """Steps the belief state sees: the current observation and the history-1 before it, with their actions."""


PLANNER_KINDS = ("mppi", "mppi+grad", "cem", "grad", "policy")
"""agent/planner.py's searches ('policy': mode 1 alone, no search)."""
ENCODER_KINDS = ("auto", "mlp", "cnn")
TARGETS = ("sg", "ema", "grad")
"""How the prediction target is made: stop-gradient, an EMA copy of the encoder, or full gradient."""
AUTOCASTS = ("none", "bf16", "fp16")


def problems(cfg: AgentConfig) -> list[str]:
    """What makes `cfg` unusable, one line each (empty: it builds and trains). Checked when a run's config is
    resolved, so a bad value exits before anything starts instead of failing at the first plan."""
    out = []
    for where, kind in (("planner", cfg.planner.kind), ("hierarchy.planner", cfg.hierarchy.planner.kind)):
        if kind not in PLANNER_KINDS:
            out.append(f"agent.{where}.kind must be one of {', '.join(PLANNER_KINDS)}, got {kind!r}")
    choices = (("encoder.kind", cfg.encoder.kind, ENCODER_KINDS), ("world_model.target", cfg.world_model.target,
               TARGETS), ("optim.autocast", cfg.optim.autocast, AUTOCASTS))
    out += [f"agent.{key} must be one of {', '.join(ok)}, got {value!r}" for key, value, ok in choices
            if value not in ok]
    counts = (("optim.health_every", cfg.optim.health_every), ("cost.critic_ensemble", cfg.cost.critic_ensemble),
              ("hierarchy.replan_every", cfg.hierarchy.replan_every), ("planner.horizon", cfg.planner.horizon))
    out += [f"agent.{key} must be positive, got {value}" for key, value in counts if value < 1]
    if not 0 <= cfg.cost.target_members <= cfg.cost.critic_ensemble:
        out.append(f"agent.cost.target_members must be 0 ... cost.critic_ensemble, got {cfg.cost.target_members}")
    if cfg.optim.policy_horizon < 0:
        out.append(f"agent.optim.policy_horizon must be 0 or more, got {cfg.optim.policy_horizon}")
    return out
