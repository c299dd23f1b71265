"""Observability of the inline backend: one process plays the driver, actor 0 and the learner.

Each role gets its own endpoint and identity, exactly as in a Ray run, so the series, labels, dashboards and
discovery are the same whichever backend ran: the driver's endpoint (`--metrics-port`, with /sd for http_sd)
and the run's discovery file list all three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ami.telemetry.discovery import Discovery
from ami.telemetry.exporter import ExporterConfig, ProcessMetrics, start_process_metrics


class InlineMetrics:
    """Driver, actor and learner metrics of an inline run, published in one discovery file."""

    def __init__(self, run_name: str, env_id: str, port: int | None, bind: str = "127.0.0.1"):
        self.disc = Discovery(run_name)
        own = ExporterConfig(bind_host=bind)
        self.roles: dict[str, ProcessMetrics] = {
            "driver": start_process_metrics("driver", env_id, cfg=ExporterConfig(bind_host=bind, port=port or 0),
                                            routes={"/sd": self.disc.http_sd}),
            "actor-0": start_process_metrics("actor", env_id, 0, own),
            "learner": start_process_metrics("learner", env_id, cfg=own)}
        for key, pm in self.roles.items():
            self.disc.set(key, pm.target)
        self.driver, self.learner = self.roles["driver"].driver, self.roles["learner"].learner
        self.actor = self.roles["actor-0"].actor

    def stepped(self, env_steps: int, episodes: Iterable, version_used: int, version_latest: int) -> None:
        """After a vector step of the runner: envs stepped, the episodes it finished, versions."""
        self.actor.step(env_steps)
        self.actor.episodes(episodes)
        self.actor.weights(version_used, version_latest)

    def trained(self, metrics: Mapping[str, float], n: int, seconds: float, version: int | None) -> None:
        """After n updates; `version` when a new snapshot was published."""
        self.learner.update(metrics, n=n, seconds=seconds)
        if version is not None:
            self.learner.published(version)

    def progress(self, book, target: int, updates_per_s: float, live: int,
                 replay_stats: Mapping[str, float] | None) -> None:
        self.driver.progress(book.env_steps, target, book.episodes, updates_per_s, live)
        if replay_stats:
            self.roles["driver"].replay.observe_server(replay_stats)
        self.driver.discovery(len(self.disc))

    def close(self) -> None:
        self.disc.close()
        for pm in self.roles.values():
            pm.close()
