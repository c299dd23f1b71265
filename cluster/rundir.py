"""The run directory (docs/contracts.md): config.yaml, metrics.jsonl, summary.json, checkpoints/latest.pt (and
previous.pt, the one before it), and a Ray run's running.json. Every whole-file write goes through `RunDir.write`
(temp file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from ami.cluster.config import ConfigError

T = TypeVar("T")

SUMMARY_KEYS = ("env_steps", "updates", "wall_seconds", "eval_return_mean", "eval_return_std", "weights_version",
                "env_id", "seed")


def default_path(env_id: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path("runs") / f"{env_id.replace('/', '_')}-{stamp}"


class RunDir:
    """Writes one run's files; every write of a whole file goes through a temp file and a rename."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest_checkpoint(self) -> Path:
        return self.checkpoints / "latest.pt"

    @property
    def previous_checkpoint(self) -> Path:
        return self.checkpoints / "previous.pt"

    @property
    def pretrained(self) -> Path:
        """The weights of an `ami pretrain` run (not latest.pt: such a run is no interaction run to resume)."""
        return self.checkpoints / "pretrained.pt"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.remove_stale_temporaries()

    def write(self, name: str, data: str | bytes) -> Path:
        """Write RUN_DIR/name whole and atomically: a reader (or a crash, or a power cut) never sees half a file."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(path)
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # and the rename itself survives a power cut
        return path

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temp files of writers that died mid-write (their pid is gone); a live writer's stay."""
        removed = []
        for p in [*self.path.glob(".*.tmp"), *self.checkpoints.glob(".*.tmp")]:
            pid = p.name[:-len(".tmp")].rsplit(".", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def write_config(self, cfg: dict) -> None:
        self.write("config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    def write_checkpoint(self, data: bytes) -> None:
        """The learner's checkpoint bytes as checkpoints/latest.pt; the one it replaces becomes previous.pt first, so
        whatever happens to latest.pt there is a complete checkpoint to resume from (`read_checkpoint`)."""
        latest = self.latest_checkpoint
        if latest.exists():
            keep = _temporary(self.previous_checkpoint)
            try:
                os.link(latest, keep)  # no copy of the bytes where the filesystem has hard links
            except OSError:
                shutil.copyfile(latest, keep)
            os.replace(keep, self.previous_checkpoint)
        self.write("checkpoints/latest.pt", data)

    def read_checkpoint(self, load: Callable[[bytes], T]) -> tuple[bytes, T] | None:
        """(bytes, load(bytes)) of the newest checkpoint that loads: latest.pt, else previous.pt, saying so on stderr;
        None when the run has no checkpoint. Neither loading is a ConfigError (one line, exit 2)."""
        failures = []
        for path in (self.latest_checkpoint, self.previous_checkpoint):
            if not path.exists():
                continue
            data = path.read_bytes()
            try:
                loaded = load(data)
            except Exception as e:  # noqa: BLE001 - whatever spoilt the file, the other one may still load
                failures.append(f"{path.name}: {type(e).__name__}")
                continue
            if failures:
                print(f"ami: warning: {self.checkpoints}: {failures[0]} does not load; using {path.name}",
                      file=sys.stderr)
            return data, loaded
        if failures:
            raise ConfigError(f"{self.checkpoints}: no checkpoint loads ({'; '.join(failures)})")
        return None

    def read_config(self) -> dict:
        return yaml.safe_load((self.path / "config.yaml").read_text())

    def append_metrics(self, line: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    def read_metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        return [json.loads(s) for s in p.read_text().splitlines() if s.strip()]

    def write_summary(self, summary: dict) -> None:
        missing = [k for k in SUMMARY_KEYS if k not in summary]
        if missing:
            raise ValueError(f"summary lacks {missing}")
        self.write("summary.json", json.dumps(summary, indent=2) + "\n")


def _temporary(path: Path) -> Path:
    """Where one process writes `path` before renaming it (its pid in the name: see remove_stale_temporaries)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
