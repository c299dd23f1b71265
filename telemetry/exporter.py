"""Per-process metrics endpoints and the discovery that lets Prometheus find them.

Every process (each Ray actor, the learner, the driver) calls `start_process_metrics` once: it builds its own
CollectorRegistry and serves it over HTTP on a port the kernel picks (port 0), so ports never collide however
many processes share a node. It answers with a `Target` (advertised host:port + labels) that the process
hands to the driver.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ami.telemetry.metrics import ActorMetrics, DriverMetrics, Identity, LearnerMetrics, MetricSet, ReplayMetrics


@dataclass(frozen=True)
class ExporterConfig:
    """Where a process serves /metrics."""

    bind_host: str = "0.0.0.0"
    """Interface to listen on; 0.0.0.0 so a Prometheus on another node can scrape."""
    port: int = 0
    """0: a free port chosen by the kernel (never collides); the driver may fix it with --metrics-port."""
    advertise_host: str | None = None
    """Host written into discovery; None: 127.0.0.1 for a loopback bind, else the node's IP (Ray's when inside
    a Ray worker)."""


@dataclass(frozen=True)
class Target:
    """One scrape target as it travels to the driver (picklable, JSON-able)."""

    host: str
    """Advertised host."""
    port: int
    """Bound port."""
    labels: dict[str, str] = field(default_factory=dict)
    """role, env_id and (actors) actor_id; attached to the target by Prometheus."""

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_dict(self) -> dict:
        return {"host": self.host, "port": self.port, "labels": dict(self.labels)}

    @staticmethod
    def from_dict(d: Mapping) -> Target:
        return Target(str(d["host"]), int(d["port"]), dict(d.get("labels", {})))


def node_ip(bind_host: str) -> str:
    """The address other machines reach this process at."""
    if bind_host in ("127.0.0.1", "localhost", "::1"):
        return "127.0.0.1" if bind_host != "::1" else "::1"
    ray = sys.modules.get("ray")  # never import Ray here: the learner runs without it
    if ray is not None and ray.is_initialized():
        return ray.util.get_node_ip_address()
    try:  # the interface of the default route (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class Exporter:
    """A threaded HTTP server: GET /metrics (the registry) and any extra routes (the driver's /sd)."""

    def __init__(self, registry, cfg: ExporterConfig,
                 routes: Mapping[str, Callable[[], tuple[bytes, str]]] | None = None):
        from prometheus_client.exposition import choose_encoder

        self.cfg = cfg
        extra = dict(routes or {})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                path = self.path.split("?")[0]
                if path in ("/metrics", "/"):
                    encoder, ctype = choose_encoder(self.headers.get("Accept"))
                    body = encoder(registry)
                elif path in extra:
                    body, ctype = extra[path]()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        family = socket.AF_INET6 if ":" in cfg.bind_host else socket.AF_INET
        server_cls = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        self.server = server_cls((cfg.bind_host, cfg.port), Handler)
        self.port = int(self.server.server_address[1])
        self.host = cfg.advertise_host or node_ip(cfg.bind_host)
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="ami-metrics",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class ProcessMetrics:
    """One process's MetricSet, its exporter and the role helpers (built on first use)."""

    def __init__(self, identity: Identity, cfg: ExporterConfig | None = None,
                 routes: Mapping[str, Callable[[], tuple[bytes, str]]] | None = None):
        self.metrics = MetricSet(identity)
        self.exporter = Exporter(self.metrics.registry, cfg or ExporterConfig(), routes)
        labels = {k: v for k, v in identity.labels().items() if v}
        self.target = Target(self.exporter.host, self.exporter.port, labels)
        self._helpers: dict[str, object] = {}

    def _helper(self, cls):
        if cls.__name__ not in self._helpers:  # built on first use: a process exports only its role's series
            self._helpers[cls.__name__] = cls(self.metrics)
        return self._helpers[cls.__name__]

    @property
    def actor(self) -> ActorMetrics:
        return self._helper(ActorMetrics)

    @property
    def learner(self) -> LearnerMetrics:
        return self._helper(LearnerMetrics)

    @property
    def replay(self) -> ReplayMetrics:
        return self._helper(ReplayMetrics)

    @property
    def driver(self) -> DriverMetrics:
        return self._helper(DriverMetrics)

    def close(self) -> None:
        self.exporter.close()


def start_process_metrics(role: str, env_id: str, actor_id: int | None = None,
                          cfg: ExporterConfig | None = None,
                          routes: Mapping[str, Callable[[], tuple[bytes, str]]] | None = None) -> ProcessMetrics:
    """Start this process's exporter; `.target` is what to hand to the driver's Discovery."""
    return ProcessMetrics(Identity(role, env_id, actor_id), cfg, routes)
