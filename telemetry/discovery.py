"""Discovery: how Prometheus finds the live processes of a run.

The driver's `Discovery` keeps the set of live targets and publishes it two ways, from one source:
- file_sd: a JSON file `<directory>/<run>.json`, rewritten atomically (temp file + rename) whenever the set
  changes. `deploy/prometheus/prometheus.yml` globs `<directory>/*.json`, so every run on the machine is
  found, and a run's file disappears when the run ends. This is the default on one machine or a Ray head
  node, exactly like Ray's own `/tmp/ray/prom_metrics_service_discovery.json`.
- http_sd: the same list as JSON at `GET /sd` on the driver's endpoint (`--metrics-port`), for a Prometheus
  that does not share the driver's filesystem (Kubernetes:
  `deploy/k8s/monitoring.yaml`, `deploy/prometheus/prometheus-k8s.yml`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ami.telemetry.exporter import Target

DEFAULT_SD_DIR = "/tmp/ami/prometheus"
"""Where drivers write file_sd files (AMI_PROMETHEUS_SD_DIR overrides); prometheus.yml reads *.json here."""


@dataclass(frozen=True)
class DiscoveryConfig:
    """Where the driver publishes its targets."""

    directory: str | None = None
    """file_sd directory; None: $AMI_PROMETHEUS_SD_DIR or /tmp/ami/prometheus."""
    enabled: bool = True
    """False: keep targets for http_sd only, write no file."""


class Discovery:
    """The live targets of one run, published as a file_sd file (atomic rewrites) and as http_sd JSON."""

    def __init__(self, run_name: str, cfg: DiscoveryConfig | None = None):
        cfg = cfg or DiscoveryConfig()
        directory = Path(cfg.directory or os.environ.get("AMI_PROMETHEUS_SD_DIR") or DEFAULT_SD_DIR)
        self.path = directory / f"{run_name}.json" if cfg.enabled else None
        self._targets: dict[str, Target] = {}
        self._written: str | None = None
        self._lock = threading.Lock()

    def set(self, key: str, target: Target | Mapping) -> None:
        """Add or replace the target of process `key` (e.g. "driver", "learner", "actor-3"); writes if changed."""
        t = target if isinstance(target, Target) else Target.from_dict(target)
        with self._lock:
            self._targets[key] = t
            self._write()

    def discard(self, key: str) -> None:
        """Forget a process that stopped or died."""
        with self._lock:
            if self._targets.pop(key, None) is not None:
                self._write()

    def __len__(self) -> int:
        return len(self._targets)

    def payload(self) -> list[dict]:
        """The file_sd / http_sd document: one group per target, its labels attached."""
        return [{"targets": [t.address], "labels": dict(t.labels)}
                for _, t in sorted(self._targets.items())]

    def http_sd(self) -> tuple[bytes, str]:
        """Route body for GET /sd on the driver's exporter."""
        with self._lock:
            return json.dumps(self.payload()).encode(), "application/json"

    def _write(self) -> None:
        text = json.dumps(self.payload(), indent=1)
        if self.path is None or text == self._written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)  # Prometheus never reads a half-written file
        self._written = text

    def close(self) -> None:
        """The run is over: its file goes, so Prometheus drops its targets."""
        with self._lock:
            self._targets.clear()
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self._written = None
