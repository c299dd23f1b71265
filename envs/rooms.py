"""Goal-reaching point-mass envs on a grid layout of rooms, walls and doors (TwoRooms; mazes in envs/maze.py).

The agent is a point moving continuously in cell units; an action in [-1, 1]^2 is a velocity, clipped to the
unit disk (so diagonal moves are not faster) and scaled by `speed` cells per step. Walls are whole cells: a
move is applied in small sub-steps, each axis separately, so the point slides along walls instead of sticking.

The goal is given as an observation of the same kind as the state: Dict {'observation', 'goal'}, both the
normalised position (vector variant) or both a 64x64 top-down RGB image with the point drawn where it is / where
the goal is (pixel variant). Reward is -1 per step until success (unused by the reward-free goal agent);
`info['is_success']` is True on the step that comes within `success_radius` cells of the goal, which also ends
the episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

TWO_ROOMS = (
    "###########",
    "#0000#1111#",
    "#0000#1111#",
    "#0000.1111#",
    "#0000#1111#",
    "#0000#1111#",
    "###########",
)
"""'#' wall, '.' door (free, in no room), digits: free cells of that room."""

OPEN_ROOM = ("#######",) + ("#00000#",) * 5 + ("#######",)
"""One 5 x 5 room, start and goal anywhere in it: goal reaching small enough for smoke tests (ami/OpenRoom-v0)."""

IMAGE_SIZE = 64


class PointRoomsEnv(gym.Env):
    """A point in a grid of rooms; start and goal drawn uniformly in two different rooms."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, layout: tuple[str, ...] = TWO_ROOMS, pixels: bool = False, speed: float = 0.5,
                 success_radius: float = 0.5, max_steps: int = 100, margin: float = 0.25,
                 goal_rooms: dict[int, tuple[int, ...]] | None = None, corner: int = 0,
                 render_mode: str | None = None):
        self.layout = tuple(layout)
        self.grid = np.array([[c == "#" for c in row] for row in self.layout], dtype=bool)  # [rows, cols]
        self.rows, self.cols = self.grid.shape
        self.rooms: dict[int, np.ndarray] = {}
        for r, row in enumerate(self.layout):
            for c, ch in enumerate(row):
                if ch.isdigit():
                    self.rooms.setdefault(int(ch), []).append((c, r))  # (x, y) of the cell's corner
        self.rooms = {k: np.asarray(v, dtype=np.float64) for k, v in sorted(self.rooms.items())}
        self.pixels, self.speed, self.success_radius = pixels, speed, success_radius
        self.max_steps, self.margin, self.render_mode = max_steps, margin, render_mode
        # which rooms the goal may be drawn in for each start room (default: any other room)
        ids = tuple(self.rooms)
        self.goal_rooms = goal_rooms or {k: tuple(j for j in ids if j != k) for k in ids}
        # corner > 0: draw start and goal only within `corner` cells of the room's cell farthest from the maze
        # centre, so a long maze really needs its long way round
        self.corner = corner
        if pixels or render_mode == "rgb_array":  # the maze drawn once: observations and renders share it
            self._background = self._draw_background()
        if pixels:
            box = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        else:
            box = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "goal": box})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)
        self._t = 0

    # ----- geometry -----------------------------------------------------------------------------------------
    def free(self, p: np.ndarray) -> bool:
        """True when point p = (x, y) in cell units lies in a free cell."""
        c, r = int(np.floor(p[0])), int(np.floor(p[1]))
        return 0 <= r < self.rows and 0 <= c < self.cols and not self.grid[r, c]

    def _sample_in(self, room: int) -> np.ndarray:
        pool = self.rooms[room]
        if self.corner:
            centre = np.array([self.cols, self.rows]) / 2 - 0.5
            far = pool[np.argmax(np.abs(pool - centre).sum(1))]
            pool = pool[np.abs(pool - far).max(1) < self.corner]
        corner = pool[self.np_random.integers(len(pool))]
        return corner + self.np_random.uniform(self.margin, 1 - self.margin, 2)

    def _move(self, p: np.ndarray, v: np.ndarray) -> np.ndarray:
        n = max(int(np.ceil(np.abs(v).max() / 0.1)), 1)  # sub-steps of at most 0.1 cells: no tunnelling
        p = p.copy()
        for _ in range(n):
            for axis in (0, 1):
                q = p.copy()
                q[axis] += v[axis] / n
                if self.free(q):
                    p = q
        return p

    def normalise(self, p: np.ndarray) -> np.ndarray:
        """Cell units -> [-1, 1]^2 (the vector observation)."""
        return (2 * p / np.array([self.cols, self.rows]) - 1).astype(np.float32)

    # ----- gymnasium API ------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start_room = int(self.np_random.choice(list(self.rooms)))
        goal_room = int(self.np_random.choice(self.goal_rooms[start_room]))
        self.pos = self._sample_in(start_room)
        self.goal = self._sample_in(goal_room)
        self._t = 0
        return self._obs(), {"is_success": False}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        a = a / max(1.0, float(np.linalg.norm(a)))
        self.pos = self._move(self.pos, self.speed * a)
        self._t += 1
        success = bool(np.linalg.norm(self.pos - self.goal) <= self.success_radius)
        return self._obs(), 0.0 if success else -1.0, success, self._t >= self.max_steps, {"is_success": success}

    def _obs(self) -> dict[str, np.ndarray]:
        if self.pixels:
            return {"observation": self._draw(self.pos), "goal": self._draw(self.goal)}
        return {"observation": self.normalise(self.pos), "goal": self.normalise(self.goal)}

    def render(self):
        return self._draw(self.pos)

    # ----- pixels -------------------------------------------------------------------------------------------
    def _draw_background(self) -> np.ndarray:
        img = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 235, dtype=np.uint8)
        ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
        cx = ((xs + 0.5) * self.cols / IMAGE_SIZE).astype(int)
        cy = ((ys + 0.5) * self.rows / IMAGE_SIZE).astype(int)
        img[self.grid[cy, cx]] = (60, 60, 60)
        return img

    def _draw(self, p: np.ndarray) -> np.ndarray:
        """The maze with a disc where p is; the disc is ~3 px, large enough for a strided CNN to see."""
        img = self._background.copy()
        px = p[0] * IMAGE_SIZE / self.cols
        py = p[1] * IMAGE_SIZE / self.rows
        x0, x1 = max(int(px) - 3, 0), min(int(px) + 4, IMAGE_SIZE)
        y0, y1 = max(int(py) - 3, 0), min(int(py) + 4, IMAGE_SIZE)
        ys, xs = np.mgrid[y0:y1, x0:x1]
        disc = (xs + 0.5 - px) ** 2 + (ys + 0.5 - py) ** 2 <= 2.5 ** 2
        img[ys[disc], xs[disc]] = (220, 30, 30)
        return img


def geodesic_cells(env: PointRoomsEnv, a: np.ndarray, b: np.ndarray, res: int = 4) -> float:
    """Shortest free-space path length from a to b in cell units (8-connected search on a res x finer grid);
    used to check how many steps a maze needs at least."""
    import heapq

    grid = np.kron(env.grid, np.ones((res, res), dtype=bool))
    rows, cols = grid.shape
    start = (int(a[1] * res), int(a[0] * res))
    goal = (int(b[1] * res), int(b[0] * res))
    dist = {start: 0.0}
    heap = [(0.0, start)]
    moves = [(dr, dc, float(np.hypot(dr, dc))) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]
    while heap:
        d, (r, c) = heapq.heappop(heap)
        if (r, c) == goal:
            return d / res
        if d > dist.get((r, c), np.inf):
            continue
        for dr, dc, w in moves:
            nr, nc = r + dr, c + dc
            # diagonal moves may not cut a wall corner
            if (0 <= nr < rows and 0 <= nc < cols and not grid[nr, nc] and not grid[r, nc] and not grid[nr, c]
                    and d + w < dist.get((nr, nc), np.inf)):
                dist[(nr, nc)] = d + w
                heapq.heappush(heap, (d + w, (nr, nc)))
    return float("inf")


class OpenRoomEnv(PointRoomsEnv):
    """ami/OpenRoom-v0: PointRoomsEnv on OPEN_ROOM, 30 steps per episode."""

    def __init__(self, **kwargs):
        super().__init__(layout=OPEN_ROOM, goal_rooms={0: (0,)}, max_steps=30, **kwargs)
