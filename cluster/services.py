"""Start or attach the services a Ray run needs: Ray itself and the Redis replay server.

`redis_url` finds the replay's URL (flag, 0600 file or environment) and `check_addresses` runs before anything
is started or written: an unreachable --redis-url or --ray-address is a
one-line ConfigError. `Services` starts what was not given (a local Ray with num_cpus, a private
redis-server) and on close stops exactly what it started.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ami.cluster.config import ConfigError


def ray_address(flag: str | None) -> str | None:
    """--ray-address, else RAY_ADDRESS, else None (start a local instance)."""
    return flag or os.environ.get("RAY_ADDRESS") or None


REDIS_URL_ENV = "AMI_REDIS_URL"
"""The environment variable that carries the Redis URL (with its password) off the command line."""


def redis_url(flag: str | None, file: str | None, environ: Mapping[str, str]) -> str | None:
    """The replay's Redis URL: --redis-url, else --redis-url-file (mode 0600 or stricter), else $AMI_REDIS_URL,
    else None (a private redis-server). A password on the command line works but is shown by `ps` to every user
    of the machine and kept by schedulers (Ray's job table): one warning line says where it belongs. Problems
    are one-line ConfigErrors that never quote the URL."""
    if flag and file:
        raise ConfigError("--redis-url and --redis-url-file: give one of them")
    if flag:
        if _has_password(flag):
            print(f"ami: warning: --redis-url carries a password, which `ps` shows to every user of this machine; "
                  f"pass the URL in ${REDIS_URL_ENV} or --redis-url-file instead", file=sys.stderr)
        return flag
    if file:
        return _read_url_file(Path(file))
    return environ.get(REDIS_URL_ENV) or None


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _read_url_file(path: Path) -> str:
    """The one line of a URL file that only its owner may read (a password lives in it)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigError(f"--redis-url-file {path}: readable by group or others (mode {mode & 0o777:04o}); "
                              f"chmod 600 it, or pass the URL in ${REDIS_URL_ENV}")
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read --redis-url-file {path}: {e.strerror or e}") from None
    if not text or "\n" in text:
        raise ConfigError(f"--redis-url-file {path}: expected one line, the Redis URL")
    return text


def _host_port(address: str) -> tuple[str, int] | None:
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    if not parts.hostname:
        raise ConfigError(f"invalid Ray address {address!r}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"invalid Ray address {address!r}") from None
    return parts.hostname, port or (10001 if address.startswith("ray://") else 6379)


def check_addresses(redis_url: str | None, ray_addr: str | None, timeout_s: float = 2.0) -> None:
    """Raise ConfigError (one line) when a given Redis URL does not answer PING or a Ray address does not
    accept a connection."""
    if redis_url:
        from ami.memory.redis_replay import ReplayUnreachable, check_urls

        try:
            check_urls([redis_url], timeout_s)
        except ReplayUnreachable as e:
            raise ConfigError(str(e)) from None
    if ray_addr:
        hp = _host_port(ray_addr)
        if hp is not None:
            try:
                socket.create_connection(hp, timeout=timeout_s).close()
            except OSError as e:
                raise ConfigError(f"cannot reach Ray at {ray_addr}: {e.strerror or e}") from None


def other_hosts(nodes: list[dict]) -> set[str]:
    """Addresses of the alive Ray nodes (`ray.nodes()`) on another host than this driver's."""
    here = {n["NodeManagerAddress"] for n in nodes if n.get("Alive") and _is_local(n["NodeManagerAddress"])}
    return {n["NodeManagerAddress"] for n in nodes if n.get("Alive")} - here


def _is_local(address: str) -> bool:
    """True for an address of one of this machine's interfaces (bindable here)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


class Services:
    """Ray and Redis for one run; `close()` stops only what this object started."""

    def __init__(self, redis_url: str | None, ray_addr: str | None, num_cpus: int = 0, redis_aof: bool = True):
        self.redis_url, self.ray_addr, self.num_cpus, self.redis_aof = redis_url, ray_addr, num_cpus, redis_aof
        self._server = None
        self._owns_ray = False
        self._local_ray = False
        self.url = ""

    def start(self) -> Services:
        import ray

        if not ray.is_initialized():
            kw = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": True}
            try:
                if self.ray_addr:
                    ray.init(address=self.ray_addr, **kw)
                else:
                    ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count(), **kw)  # a new one
                    self._local_ray = True
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"cannot start or attach Ray ({self.ray_addr or 'local'}): "
                                  f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            self._owns_ray = True
        if self.redis_url:
            self.url = self.redis_url
        else:
            from ami.memory.config import EmbeddedRedisConfig
            from ami.memory.embedded import EmbeddedRedis

            far = other_hosts(ray.nodes())
            if far:
                self.close()
                raise ConfigError(f"this Ray cluster has nodes on other hosts ({', '.join(sorted(far))}): their "
                                  "actors cannot reach a private redis-server on 127.0.0.1; pass --redis-url")
            # a password of its own, written only to its 0600 config file and handed to clients in the URL (Ray
            # carries actor arguments in its object store, never on a command line): no other local user reads
            # or poisons the replay
            self._server = EmbeddedRedis(EmbeddedRedisConfig(appendonly=self.redis_aof, appendfsync="everysec",
                                                             password=secrets.token_urlsafe(24)))
            self.url = self._server.start()
        return self

    @property
    def attached(self) -> bool:
        """The run joined a Ray that was there before it (an address, or one the calling process had joined): a
        cluster that may span machines and be shared or autoscaled, not an instance of this run's own."""
        return not self._local_ray

    @property
    def metrics_bind(self) -> str:
        """Interface for the run's /metrics endpoints: loopback when everything runs on this machine."""
        return "0.0.0.0" if self.attached else "127.0.0.1"

    def supervise(self) -> bool:
        """Restart the private redis-server if it died (same port and directory: the AOF brings the data back);
        True when it did."""
        if self._server is None or self._server.running:
            return False
        self._server.restart()
        return True

    def close(self) -> None:
        import ray

        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False
