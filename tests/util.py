"""Small helpers shared by the process-level tests (chaos, observability)."""

from __future__ import annotations

import os
import socket
import time


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout: float, what: str):
    """Poll fn until it returns something truthy (returned), or fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def ray_workers_at_nice_0() -> None:
    """Raylets this process starts from now on run their workers at nice 0. Ray's default (worker_niceness 15)
    lets any busy nice-0 process starve them — beside four training runs on a dev box an actor's process got 1 s
    of CPU in a minute and a drill timed out — while the tests measure placement and recovery, not priority."""
    os.environ["RAY_worker_niceness"] = "0"
