"""The driver's side of a Ray run's learner: its handle, what it last reported, and bringing it back after a
crash from the run's last checkpoint (cluster/recovery.py)."""

from __future__ import annotations

from collections.abc import Callable

import ray

from ami.cluster.config import RunFailed
from ami.cluster.observe import RunObserver
from ami.cluster.recovery import UNREACHABLE, RestartBudget


class LearnerLink:
    """One LearnerActor as the driver sees it: `up` (it answers), `status` (its last report), `recoveries`."""

    def __init__(self, handle, obs: RunObserver, budget: RestartBudget, restarted: Callable[[str], None]):
        self.handle, self.obs, self.budget, self.restarted = handle, obs, budget, restarted
        obs.watch("learner", handle)
        self.up = True
        self.down_since = 0.0  # budget.clock() when it stopped answering
        self.recoveries: list[dict] = []
        ray.get(handle.start.remote())
        self.status: dict = ray.get(handle.status.remote())

    def ask(self, method: str, *args):
        """learner.<method>(*args), or None when the learner crashed meanwhile (the next poll sees to it)."""
        try:
            return ray.get(getattr(self.handle, method).remote(*args), timeout=120)
        except UNREACHABLE:
            return None

    def poll(self, checkpoint: Callable[[], bytes | None], stored: Callable[[], int]) -> None:
        """Read its status; a learner Ray restarted is restored from `checkpoint()` at `stored()` env steps (what
        the replay holds) and started again. Raises when it failed or cannot come back."""
        try:
            st = ray.get(self.handle.status.remote(), timeout=30)
        except UNREACHABLE:
            now = self.budget.clock()
            if self.up:  # crashed: Ray restarts it; restored from the last checkpoint when it answers
                self.budget.crashed("the learner")
                self.up, self.down_since = False, now
                self.obs.forget("learner")
            elif now - self.down_since > self.budget.window_s:  # e.g. no node can host it any more
                raise RunFailed(f"the learner has not come back for {now - self.down_since:.0f} s "
                                f"(runtime.restart_window_s={self.budget.window_s:g})") from None
            return
        if st["needs_restore"]:
            before = self.status.get("updates", 0)
            # the learner paces on what the replay holds: the driver's count lags (an actor that crashed before
            # its first status), and a learner that counts fewer steps than the actors claimed never catches
            # up with actors paused on it
            steps = stored()
            st = ray.get(self.handle.restore.remote(checkpoint(), steps))
            self.recoveries.append({"process": "learner", "updates_before": before, "updates_after": st["updates"],
                                    "version_after": st["version"], "at_env_steps": steps})
            ray.get(self.handle.start.remote())
            self.restarted("learner")
            self.obs.watch("learner", self.handle)
        self.up = True
        self.status = st
        if st["error"]:
            raise RuntimeError(f"learner failed:\n{st['error']}")

    def finish(self, env_steps: int, interrupted: bool) -> None:
        """Stop its training loop; unless interrupted, first run the updates still owed at `env_steps`."""
        if interrupted:
            ray.get(self.handle.stop.remote())
            self.status = ray.get(self.handle.status.remote())
        else:
            self.status = ray.get(self.handle.finish.remote(env_steps))
