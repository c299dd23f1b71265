"""Built-in gymnasium envs. Call `register_envs()` once before `gymnasium.make("ami/...")`."""

from __future__ import annotations

_ENTRIES = {
    "ami/Bimodal-v0": ("ami.envs.bimodal:BimodalEnv", {}, None),
    "ami/OpenRoom-v0": ("ami.envs.rooms:OpenRoomEnv", {}, 30),
    "ami/TwoRooms-v0": ("ami.envs.rooms:PointRoomsEnv", {}, 100),
    "ami/TwoRoomsPixels-v0": ("ami.envs.rooms:PointRoomsEnv", {"pixels": True}, 100),
    "ami/FourRooms-v0": ("ami.envs.maze:FourRoomsEnv", {}, 300),
    "ami/FourRoomsPixels-v0": ("ami.envs.maze:FourRoomsEnv", {"pixels": True}, 300),
    # the same maze with start and goal anywhere: where reward-free random exploration reaches every room
    "ami/FourRoomsExplore-v0": ("ami.envs.maze:FourRoomsEnv", {"corner": 0, "goal_rooms": None}, 300),
    "ami/FourRoomsPixelsExplore-v0": ("ami.envs.maze:FourRoomsEnv", {"pixels": True, "corner": 0, "goal_rooms": None},
                                      300),
    # partially observed: the velocities are hidden (agent.belief=auto infers the state from the history)
    "ami/PendulumNoVel-v0": ("ami.envs.partial:pendulum_no_velocity", {}, 200),
    "ami/CartPoleNoVel-v0": ("ami.envs.partial:cartpole_no_velocity", {}, 500),
    # 32 entries of noise after Pendulum's observation: a world model must learn to leave them out (envs/distract.py)
    "ami/PendulumDistractors-v0": ("ami.envs.distract:pendulum_distractors", {}, 200),
}
ENV_IDS = tuple(_ENTRIES)

GOAL_ENV_IDS = ("ami/OpenRoom-v0", "ami/TwoRooms-v0", "ami/TwoRoomsPixels-v0", "ami/FourRooms-v0",
                "ami/FourRoomsPixels-v0", "ami/FourRoomsExplore-v0", "ami/FourRoomsPixelsExplore-v0")
"""Goal-reaching envs: Dict observations {'observation', 'goal'}, info['is_success']; `ami train` runs them as
goal tasks (run.task=auto).
The *Explore ids draw starts anywhere in the maze (exploration data for the FourRooms world model)."""


def register_envs() -> None:
    """Register every built-in id with gymnasium (idempotent)."""
    import gymnasium as gym

    for env_id, (entry, kwargs, limit) in _ENTRIES.items():
        if env_id not in gym.registry:
            # the spec's time limit is what the configurator reads as the episode length
            gym.register(env_id, entry_point=entry, kwargs=kwargs, max_episode_steps=limit)
