"""Discovery: how Prometheus finds the live processes of a run.

The driver's `Discovery` keeps the set of live targets and publishes it two ways, from one source:
- file_sd: a JSON file `<directory>/<run>.json`, rewritten atomically (temp file + rename) whenever the set
  changes. The directory is per user (`/tmp/ami-<uid>/prometheus`) and checked before use (`checked_sd_dir`):
  in a directory shared by every user of a machine, the first user's permissions would block the others, and
  anyone could plant targets for another user's Prometheus or swap the directory for a symlink.
  `ami prometheus-config` writes `deploy/prometheus/prometheus.yml` with the caller's directory in its glob, so
  every run of that user is found, and a run's file disappears when the run ends. This is the default on one
  machine or a Ray head node, like Ray's own `/tmp/ray/prom_metrics_service_discovery.json`.
- http_sd: the same list as JSON at `GET /sd` on the driver's endpoint (`--metrics-port`), for a Prometheus
  that does not share the driver's filesystem (Kubernetes:
  `deploy/k8s/monitoring.yaml`, `deploy/prometheus/prometheus-k8s.yml`).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ami.telemetry.exporter import Target

SD_DIR_TEMPLATE = "/tmp/ami-{uid}/prometheus"
"""Where drivers write file_sd files, one directory per user (AMI_PROMETHEUS_SD_DIR overrides)."""


class UnsafeDirectory(ValueError):
    """The discovery directory, or a directory above it, could be changed by another user."""


def sd_dir(directory: str | None = None) -> Path:
    """`directory`, else $AMI_PROMETHEUS_SD_DIR, else this user's /tmp/ami-<uid>/prometheus."""
    return Path(directory or os.environ.get("AMI_PROMETHEUS_SD_DIR") or SD_DIR_TEMPLATE.format(uid=os.getuid()))


def _unsafe(path: Path, st: os.stat_result, leaf: bool) -> str | None:
    """Why another user could alter `path` (None: they cannot). Above the leaf, root's directories and sticky
    ones (/tmp) are fine; the leaf must be this user's own and writable by nobody else."""
    uid = os.getuid()
    if st.st_uid not in ((uid,) if leaf else (uid, 0)):
        return f"is owned by uid {st.st_uid}"
    if stat.S_ISLNK(st.st_mode):
        return None  # a symlink of this user or root: its target is checked in turn
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_mode & 0o022 and not (not leaf and st.st_mode & stat.S_ISVTX):
        return "is writable by group or others"
    return None


def checked_sd_dir(directory: str | None = None) -> Path:
    """The discovery directory, created (0755: a Prometheus running as another user still reads it) when
    missing, after checking it and every directory above it (raises UnsafeDirectory, naming the path)."""
    path = sd_dir(directory).absolute()
    for p in reversed([p for p in (path, *path.parents) if not os.path.lexists(p)]):
        try:  # one by one, so no umask leaves a directory of ours group-writable
            os.mkdir(p, 0o755)
            os.chmod(p, 0o755)
        except FileExistsError:  # another process made it meanwhile: checked below like any other
            pass
    for p in (path, *path.parents):
        st = os.lstat(p)
        why = _unsafe(p, st, leaf=p == path)
        if why is None and stat.S_ISLNK(st.st_mode):
            why = _unsafe(p, os.stat(p), leaf=p == path)  # the directory the symlink points to
        if why:
            raise UnsafeDirectory(f"Prometheus discovery directory {path}: {p} {why}; remove it, or set "
                                  "AMI_PROMETHEUS_SD_DIR to a directory of your own")
    return path


@dataclass(frozen=True)
class DiscoveryConfig:
    """Where the driver publishes its targets."""

    directory: str | None = None
    """file_sd directory; None: $AMI_PROMETHEUS_SD_DIR or /tmp/ami-<uid>/prometheus."""
    enabled: bool = True
    """False: keep targets for http_sd only, write no file."""


class Discovery:
    """The live targets of one run, published as a file_sd file (atomic rewrites) and as http_sd JSON."""

    def __init__(self, run_name: str, cfg: DiscoveryConfig | None = None):
        cfg = cfg or DiscoveryConfig()
        self.path = checked_sd_dir(cfg.directory) / f"{run_name}.json" if cfg.enabled else None
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
        if not self.path.parent.is_dir():  # removed during the run (a /tmp cleaner): made and checked again
            checked_sd_dir(str(self.path.parent))
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
