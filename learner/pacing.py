"""The runtime's rules of time, written once for every backend: how many updates the replay ratio owes, and
when an every-N event (log line, evaluation, checkpoint, snapshot) falls due."""

from __future__ import annotations


def updates_owed(env_steps: int, warmup_steps: int, updates_per_step: float, warmup_updates: int = 0) -> int:
    """Updates the replay ratio allows in all at `env_steps` collected: none during warm-up, `warmup_updates` at
    once when it ends (training on the random play before the planner first acts on the model), then
    `updates_per_step` per step from the first step after it (the learner owes this minus what it has done;
    an actor pauses while the learner is too far behind it)."""
    if env_steps < warmup_steps:
        return 0
    return warmup_updates + int((env_steps - warmup_steps + 1) * updates_per_step)


def vector_steps_left(env_steps: int, budget: int, num_envs: int) -> int:
    """Vector steps of `num_envs` envs that fit into what is left of a `budget` of env steps: a run whose step
    count is no multiple of its envs per actor stops at the multiple below it (never above), on every backend."""
    return max(0, budget - env_steps) // num_envs


class Every:
    """An every-N schedule over a counter that polls read: multiple k of N is marked at the first poll at or
    past k*N; several multiples crossed in one poll are marked together, by one event. A counter that goes back
    (a learner restored from an older checkpoint) restarts the schedule from where it is. N = 0: never due."""

    def __init__(self, n: int, start: int = 0):
        self.n = n
        self.next = self._after(start)

    def _after(self, x: int) -> int:
        return (x // self.n + 1) * self.n if self.n > 0 else -1

    def due(self, x: int) -> int:
        """The multiples of N that counter value `x` marks now (0: nothing due; an event is due when > 0)."""
        if self.n <= 0:
            return 0
        if x < self.next - self.n:  # went back
            self.next = self._after(x)
        if x < self.next:
            return 0
        marked = (x - self.next) // self.n + 1
        self.next = self._after(x)
        return marked
