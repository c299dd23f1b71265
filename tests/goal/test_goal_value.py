"""Level 2's goal-conditioned critic learns cost-to-go round a wall from random-walk transitions alone."""

from __future__ import annotations

import torch

from ami.agent.config import HierarchyConfig
from ami.agent.goal_value import GoalValue

# A U-shaped corridor on a 3 x 5 grid: the middle column is a wall except at the top row, so (0, 0) -> (2, 0)
# is 2 cells apart in a straight line but 10 steps along the corridor.
FREE = [(x, y) for x in range(3) for y in range(5) if x != 1 or y == 4]
MOVES = [(1, 0), (-1, 0), (0, 1), (0, -1)]


def random_walk(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n transitions (state, next state) of a uniform random walk; blocked moves stay put."""
    cells = torch.tensor(FREE, dtype=torch.float32)
    i = torch.randint(0, len(FREE), (n,), generator=gen)
    m = torch.tensor(MOVES, dtype=torch.float32)[torch.randint(0, 4, (n,), generator=gen)]
    nxt = cells[i] + m
    free = torch.zeros(5, 7, dtype=torch.bool)  # padded by one cell all round: off the grid is not free
    free[[x + 1 for x, _ in FREE], [y + 1 for _, y in FREE]] = True
    ok = free[nxt[:, 0].long() + 1, nxt[:, 1].long() + 1]
    return cells[i], torch.where(ok[:, None], nxt, cells[i])


def test_critic_ranks_states_by_the_route_round_the_wall_not_by_straight_distance() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    cfg = HierarchyConfig(hidden=64, value_weight=1.0, value_gamma=0.9, value_tau=0.02)
    v = GoalValue(2, cfg)
    opt = torch.optim.Adam(v.parameters(), lr=3e-3)
    cells = torch.tensor(FREE, dtype=torch.float32)
    for _ in range(1500):
        s, s2 = random_walk(128, gen)
        other = cells[torch.randint(0, len(FREE), (128,), generator=gen)]
        loss, _ = v.loss(s[:, None], s2[:, None], s[:, None], s2[:, None], other[:, None], torch.ones(128, 1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        v.update_target()
    goal = torch.tensor([[2.0, 0.0]])
    with torch.no_grad():
        def cost(x, y):
            return float(v(torch.tensor([[float(x), float(y)]]), goal))

        along = [cost(0, 0), cost(0, 2), cost(0, 4), cost(2, 4), cost(2, 2), cost(2, 0)]  # 10, 8, 6, 4, 2, 0 steps
    # the cell across the wall (2 apart in a line, 10 steps round) costs more than one 4 steps down the corridor
    assert along[0] > along[4] + 1.0, along
    assert all(a > b for a, b in zip(along, along[1:], strict=False)), along  # falls along the route
    assert along[-1] < 1.0 < 4.0 < along[0], along  # at the goal: under one step; across the wall: far
