"""Parent-death guard of a private redis-server: `python -m memory.watchdog PID [DIR]`.

Reads its stdin until EOF. The owner (EmbeddedRedis) holds the only write end of that pipe, so EOF means the
owner exited without stopping the server (SIGKILL, a crash): the guard then stops redis-server PID with SIGTERM
(it fsyncs its AOF and exits), SIGKILL after a grace period, and removes DIR (the owner's temporary data
directory). An owner that stops the server itself kills the guard first. Nothing is left running either way.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time


def _is_redis(pid: int) -> bool:
    """Still our server (not a reused pid)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"redis-server" in f.read().split(b"\0")[0]
    except OSError:
        return False


def main(argv: list[str]) -> int:
    pid, data_dir = int(argv[0]), (argv[1] if len(argv) > 1 else "")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the owner, which stops us itself
    while sys.stdin.buffer.read(4096):
        pass
    if _is_redis(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while _is_redis(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_redis(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
