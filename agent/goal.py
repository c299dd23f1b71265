"""Goal observations: Dict spaces {'observation': X, 'goal': X} carry the goal as an observation of the state.

The world model is built on X alone; the goal observation goes through the same encoder, so the goal cost is
a distance between latents of the same space (and stays fixed given the encoder)."""

from __future__ import annotations

from gymnasium import spaces

STATE_KEY, GOAL_KEY = "observation", "goal"


def is_goal_space(space: spaces.Space) -> bool:
    """True for Dict({'observation': X, 'goal': X}) with the same X twice."""
    return (isinstance(space, spaces.Dict) and set(space.spaces) == {STATE_KEY, GOAL_KEY}
            and space[STATE_KEY] == space[GOAL_KEY])


def goal_conditioned(goal_weight: float, space: spaces.Space) -> bool:
    """The agent reaches goals (reward-free): a goal cost is on and the observations carry the goal."""
    return goal_weight > 0 and is_goal_space(space)


def state_space(space: spaces.Dict) -> spaces.Space:
    return space[STATE_KEY]


def state_obs(obs):
    """The state part of a goal observation batch (arrays or tensors)."""
    return obs[STATE_KEY]


def goal_obs(obs):
    return obs[GOAL_KEY]
