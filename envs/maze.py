"""A long-horizon maze: four rooms joined by four doors in the middle of each wall, start in the far corner of
one room and the goal in the far corner of the next room clockwise.

At 0.08 cells per step the shortest path between the drawn start and goal is at least 100 steps (checked in
tests/goal), and the straight line runs into the wall between the rooms: greedy descent on a straight-line
distance stops there, and getting round needs ~40 steps of look-ahead that first do not reduce the distance.
"""

from __future__ import annotations

from ami.envs.rooms import PointRoomsEnv

FOUR_ROOMS = (
    "#############",
    "#00000#11111#",
    "#00000#11111#",
    "#00000.11111#",
    "#00000#11111#",
    "#00000#11111#",
    "###.#####.###",
    "#33333#22222#",
    "#33333#22222#",
    "#33333.22222#",
    "#33333#22222#",
    "#33333#22222#",
    "#############",
)
"""Rooms 0 1 / 3 2 clockwise, a door in the middle of each wall segment."""


NEXT_ROOM = {0: (1,), 1: (2,), 2: (3,), 3: (0,)}


class FourRoomsEnv(PointRoomsEnv):
    """Start in a far corner of one room, goal in the far corner of the next room clockwise."""

    def __init__(self, pixels: bool = False, speed: float = 0.08, max_steps: int = 300, corner: int = 2,
                 goal_rooms: dict | None = NEXT_ROOM, **kwargs):
        super().__init__(FOUR_ROOMS, pixels=pixels, speed=speed, max_steps=max_steps, corner=corner,
                         goal_rooms=goal_rooms, **kwargs)
