"""The driver's side of observability: its own /metrics endpoint (with /sd for http_sd) and the run's Discovery.

Every process of a Ray run serves its own /metrics on a kernel-chosen port and tells the driver where
(`metrics_target()`); `RunObserver` keeps the discovery file (and /sd) equal to the set of live processes:
a target is added when a process starts (or comes back after a crash) and dropped when it stops or dies.
Asking a restarting actor for its target never blocks the driver's loop: the answers are collected later.
"""

from __future__ import annotations

import ray

from ami.telemetry.discovery import Discovery
from ami.telemetry.exporter import ExporterConfig, start_process_metrics


class RunObserver:
    """Driver metrics + discovery of one run."""

    def __init__(self, run_name: str, env_id: str, port: int | None, bind: str):
        self.disc = Discovery(run_name)
        self.pm = start_process_metrics("driver", env_id, cfg=ExporterConfig(bind_host=bind, port=port or 0),
                                        routes={"/sd": self.disc.http_sd})
        self.disc.set("driver", self.pm.target)
        self._pending: dict[str, ray.ObjectRef] = {}
        self._asked: dict[str, object] = {}  # key -> handle asked

    @property
    def driver(self):
        return self.pm.driver

    def watch(self, key: str, handle) -> None:
        """Ask process `key` (an actor or learner handle) for its target; published once it answers."""
        self.disc.discard(key)
        self._asked[key] = handle
        self._pending[key] = handle.metrics_target.remote()

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
        self._asked.pop(key, None)
        self.disc.discard(key)

    def collect(self, block: bool = False) -> None:
        """Publish the targets that have answered (all of them when `block`)."""
        if not self._pending:
            return
        refs = list(self._pending.values())
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=None if block else 0)
        for key, ref in list(self._pending.items()):
            if ref in ready:
                try:
                    self.disc.set(key, ray.get(ref))
                    del self._pending[key]
                except ray.exceptions.RayError:  # asked while it was dead: ask the restarted process again
                    self._pending[key] = self._asked[key].metrics_target.remote()
        self.pm.driver.discovery(len(self.disc))

    def progress(self, book, target: int, updates_per_s: float, live: int, replay_stats: dict | None) -> None:
        self.pm.driver.progress(book.env_steps, target, book.episodes, updates_per_s, live)
        if replay_stats:
            self.pm.replay.observe_server(replay_stats)
        self.pm.driver.discovery(len(self.disc))

    def close(self) -> None:
        self.disc.close()
        self.pm.close()
