"""A private redis-server for single-machine runs: free loopback port or unix socket, temp dir, AOF per config.

    with EmbeddedRedis(EmbeddedRedisConfig()) as server:
        replay = RedisReplay(ReplayConfig(), server.url)

The supervisor can `restart()` it on the same directory and port, so clients reconnect to the same URL and the
append-only file brings content and counters back. A guard process (memory/watchdog.py) stops the server and
removes its temporary directory when the owner dies without stopping it (SIGKILL): nothing outlives a run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from urllib.parse import quote

import redis

from ami.memory.config import EmbeddedRedisConfig, redact_url

_LIVE: weakref.WeakSet = weakref.WeakSet()


class RedisServerNotFound(FileNotFoundError):
    """No redis-server executable could be found."""


class RedisServerError(RuntimeError):
    """The embedded redis-server did not come up (or could not be stopped)."""


def _free_port(bind: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((bind, 0))
        return int(s.getsockname()[1])


def find_redis_server(binary: str = "redis-server") -> str:
    """Absolute path of the redis-server executable, or RedisServerNotFound with how to fix it."""
    path = shutil.which(binary)
    if path is None:
        raise RedisServerNotFound(
            f"redis-server executable {binary!r} not found on PATH: install it (Debian/Ubuntu: "
            "`apt-get install -y redis-server`, macOS: `brew install redis`) or point the replay at an existing "
            "server with --redis-url")
    return path


class EmbeddedRedis:
    """Owns one redis-server child process (start/stop/restart/kill) and its data directory."""

    def __init__(self, config: EmbeddedRedisConfig | None = None) -> None:
        self.config = config or EmbeddedRedisConfig()
        self._binary = find_redis_server(self.config.binary)
        self._own_dir = self.config.dir is None
        self.dir = self.config.dir or tempfile.mkdtemp(prefix="ami-redis-")
        os.makedirs(self.dir, exist_ok=True)
        self.port = 0 if self.config.unix_socket else self.config.port
        self.socket_path = os.path.join(self.dir, "redis.sock") if self.config.unix_socket else None
        self._proc: subprocess.Popen | None = None
        self._guard: subprocess.Popen | None = None
        self._guard_fd: int | None = None  # the only write end of the guard's stdin: EOF = the owner is gone

    # ------------------------------------------------------------------ addressing
    @property
    def url(self) -> str:
        """Client URL (includes the password when one is configured: do not log it; use redact_url)."""
        pw = self.config.password
        auth = f":{quote(pw, safe='')}@" if pw else ""
        if self.socket_path:
            return f"unix://{auth}{self.socket_path}"
        return f"redis://{auth}{self.config.bind}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        return f"EmbeddedRedis(url={redact_url(self.url)!r}, dir={self.dir!r}, running={self.running})"

    # ------------------------------------------------------------------ lifecycle
    def _write_conf(self) -> str:
        c = self.config
        lines = [
            "daemonize no", "protected-mode yes", f"dir {self.dir}", f"logfile {os.path.join(self.dir, 'redis.log')}",
            'save ""', f"appendonly {'yes' if c.appendonly else 'no'}", f"appendfsync {c.appendfsync}",
            "appenddirname appendonlydir",
        ]
        if self.socket_path:
            lines += ["port 0", f"unixsocket {self.socket_path}", "unixsocketperm 700"]
        else:
            lines += [f"bind {c.bind}", f"port {self.port}"]
        if c.password:
            escaped = c.password.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'requirepass "{escaped}"')
        if c.maxmemory:
            lines.append(f"maxmemory {c.maxmemory}")
        path = os.path.join(self.dir, "redis.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _log_tail(self, n: int = 8) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""

    def start(self) -> str:
        """Start the server (no-op if running) and wait until it answers PING; returns the URL."""
        if self.running:
            return self.url
        if self.config.appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always/everysec/no, not {self.config.appendfsync!r}")
        pick_port = not self.socket_path and self.port == 0
        for attempt in range(3):
            if pick_port:
                self.port = _free_port(self.config.bind)
            self._proc = subprocess.Popen([self._binary, self._write_conf()], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
            _LIVE.add(self)
            if self._wait_ready():
                self._start_guard()
                return self.url
            self._proc = None
            if not pick_port or attempt == 2:
                break
            self.port = 0  # the port was taken in the meantime: pick another one
        raise RedisServerError(f"redis-server did not start ({redact_url(self.url)}): {self._log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.config.startup_timeout_s
        client = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.RedisError:  # refused, or LOADING while the AOF replays
                    time.sleep(0.02)
            self._terminate(kill=True)
            return False
        finally:
            client.close()

    def _start_guard(self) -> None:
        r, w = os.pipe()  # non-inheritable: no other child of this process holds the write end
        try:
            self._guard = subprocess.Popen([sys.executable, "-m", "ami.memory.watchdog", str(self._proc.pid),
                                            self.dir if self._own_dir else ""], stdin=r,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True, cwd=os.path.dirname(os.path.dirname(__file__)))
        finally:
            os.close(r)
        self._guard_fd = w

    def _stop_guard(self) -> None:
        guard, fd, self._guard, self._guard_fd = self._guard, self._guard_fd, None, None
        if guard is not None:
            guard.kill()  # before closing its pipe, which would make it stop the server we still own
            guard.wait(5)
        if fd is not None:
            os.close(fd)

    def _terminate(self, kill: bool, timeout_s: float = 10.0) -> None:
        self._stop_guard()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM makes redis fsync the AOF and exit cleanly; SIGKILL simulates a crash
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Shut the server down cleanly; removes the data directory if it was a temporary one."""
        self._terminate(kill=False)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server (crash simulation); the directory stays for restart()."""
        self._terminate(kill=True)

    def restart(self) -> str:
        """Stop (if running) and start again on the same directory, port and socket; returns the URL."""
        self._terminate(kill=False)
        return self.start()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - interpreter shutdown
    for server in list(_LIVE):
        try:
            server.stop()
        except Exception:
            pass
