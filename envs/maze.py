"""A long-horizon maze: four rooms joined by four doors, start and goal in far corners of opposite rooms.

At 0.12 cells per step the shortest path between the drawn start and goal is at least ~100 steps (checked in
tests/goal), so greedy descent on a straight-line distance gets stuck against the walls around the centre.
"""

from __future__ import annotations

from envs.rooms import PointRoomsEnv

FOUR_ROOMS = (
    "#############",
    "#00000#11111#",
    "#00000#11111#",
    "#00000.11111#",
    "#00000#11111#",
    "#00000#11111#",
    "###.#######.#",
    "#33333#22222#",
    "#33333#22222#",
    "#33333.22222#",
    "#33333#22222#",
    "#33333#22222#",
    "#############",
)
"""Rooms 0 1 / 3 2 clockwise; doors at the middle of the vertical walls and off-centre in the horizontal one."""


class FourRoomsEnv(PointRoomsEnv):
    """Start in a far corner of one room, goal in the far corner of the diagonally opposite room."""

    def __init__(self, pixels: bool = False, speed: float = 0.12, max_steps: int = 300, **kwargs):
        kwargs.setdefault("goal_rooms", {0: (2,), 1: (3,), 2: (0,), 3: (1,)})
        kwargs.setdefault("corner", 2)
        super().__init__(FOUR_ROOMS, pixels=pixels, speed=speed, max_steps=max_steps, **kwargs)
