"""`ami scale RUN_DIR --actors K`: change the number of actors of a running Ray run.

The driver of a Ray run keeps RUN_DIR/running.json ({"pid", "actors"}) while it runs and polls
RUN_DIR/scale.json; this command writes scale.json atomically and the driver starts new actors (SPREAD over the
cluster's nodes) or stops the newest ones within one poll interval. It must run where the run directory is.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ami.cluster.config import ConfigError
from ami.cluster.rundir import RunDir

RUNNING_FILE = "running.json"
SCALE_FILE = "scale.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request_scale(run_dir: Path, actors: int) -> dict:
    """Ask the run's driver for `actors` actors; ConfigError when no Ray run is running there."""
    if actors < 1:
        raise ConfigError("--actors must be positive")
    running = Path(run_dir) / RUNNING_FILE
    try:
        info = json.loads(running.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{run_dir}: no running Ray run there (no {RUNNING_FILE})") from None
    if not _alive(int(info.get("pid", -1))):
        raise ConfigError(f"{run_dir}: the run's driver (pid {info.get('pid')}) is not running")
    req = {"actors": int(actors), "requested_at": time.time()}
    RunDir(Path(run_dir)).write(SCALE_FILE, json.dumps(req))
    return {"run_dir": str(run_dir), "actors_before": info.get("actors"), **req}


def read_scale_request(run_dir: Path, seen_mtime: float) -> tuple[float, int] | None:
    """(mtime, actors) of a scale.json newer than `seen_mtime`, else None."""
    path = Path(run_dir) / SCALE_FILE
    try:
        mtime = path.stat().st_mtime
        if mtime <= seen_mtime:
            return None
        return mtime, int(json.loads(path.read_text())["actors"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
