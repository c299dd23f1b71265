"""The run directory (docs/contracts.md): config.yaml, metrics.jsonl, summary.json, checkpoints/latest.pt, and a
Ray run's running.json. Every whole-file write goes through `RunDir.write` (temp file, then rename)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import yaml

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

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)

    def write(self, name: str, data: str | bytes) -> Path:
        """Write RUN_DIR/name whole and atomically: a reader (or a crash) never sees half a file."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
        return path

    def write_config(self, cfg: dict) -> None:
        self.write("config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    def write_checkpoint(self, data: bytes) -> None:
        """The learner's checkpoint bytes as checkpoints/latest.pt (replacing the previous one)."""
        self.write("checkpoints/latest.pt", data)

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
