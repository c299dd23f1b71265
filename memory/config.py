"""Replay configuration (frozen dataclasses) and URL redaction."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ami.memory.limiter import RateLimiter
from ami.memory.sampling import PriorityParams

_USERINFO = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>[^/]*)@")
_QUERY_PW = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***' (userinfo and ?password= query); safe to log or show."""
    url = str(url)
    def userinfo(m: re.Match) -> str:
        user, colon, _ = m["info"].partition(":")
        return f"{m['scheme']}{user}:***@" if colon else m[0]

    out = _USERINFO.sub(userinfo, url)
    return _QUERY_PW.sub(r"\1***", out)


@dataclass(frozen=True)
class EmbeddedRedisConfig:
    """How `ami` starts its private redis-server (memory.embedded.EmbeddedRedis)."""

    dir: str | None = None
    """Data directory (AOF, log, socket); None = a fresh temporary directory removed on stop."""
    port: int = 0
    """TCP port on `bind`; 0 = pick a free one. Ignored when unix_socket is true."""
    bind: str = "127.0.0.1"
    """Listen address; loopback by default."""
    unix_socket: bool = False
    """Listen on a unix socket in `dir` (permissions 700) instead of TCP."""
    appendonly: bool = True
    """Write an append-only file so content and counters survive a restart."""
    appendfsync: str = "everysec"
    """AOF fsync policy: "always", "everysec" (may lose ≤1 s of writes on a crash) or "no"."""
    password: str | None = field(default=None, repr=False)
    """requirepass for the server; never logged (written only to a 0600 config file)."""
    maxmemory: str | None = None
    """Optional server memory cap, e.g. "4gb" (writes fail past it; capacity should keep below it)."""
    binary: str = "redis-server"
    """redis-server executable name or path."""
    startup_timeout_s: float = 10.0
    """How long start() waits for the server to answer PING."""


@dataclass(frozen=True)
class ReplayConfig:
    """Replay memory settings shared by LocalReplay and RedisReplay."""

    capacity_transitions: int = 1_000_000
    """Total transitions kept (split evenly over shards); oldest whole segments are evicted first."""
    urls: tuple[str, ...] = field(default=(), repr=False)
    """Redis URLs, one per shard (redis://, rediss://, unix://), when RedisReplay is given none itself."""
    namespace: str = "ami:replay"
    """Key prefix inside each Redis database."""
    seed: int | None = None
    """Seed of the sampler's random generator (and of the writer's first shard)."""
    prioritized: bool = False
    """Sample start steps ∝ priority^alpha with importance weights instead of uniformly."""
    priority_alpha: float = 0.6
    """Priority exponent alpha."""
    priority_beta: float = 0.4
    """Importance-weight exponent beta."""
    priority_eps: float = 1e-6
    """Added to every priority."""
    samples_per_insert: float | None = None
    """Rate limit: windows sampled per transition inserted (None = no ratio limit)."""
    min_size_to_sample: int = 1
    """Sampling waits until this many transitions are stored (with a rate limiter configured)."""
    rate_error_buffer: float = 1024.0
    """Slack of the rate limiter, in windows."""
    rate_timeout_s: float | None = None
    """Longest a sample() call waits for the limiter (None = forever); then RateLimitTimeout."""
    write_flush_segments: int = 1
    """A writer sends its buffer once it holds this many segments (1 = every add is sent at once)."""
    write_batch_bytes: int = 8 << 20
    """Most encoded bytes sent to one shard in one scripted call."""
    write_pipeline_depth: int = 2
    """Write batches a writer may have sent per shard before it waits for the oldest reply."""
    write_buffer_transitions: int = 1_000_000
    """Bound of the writer's unsent buffer while Redis is unreachable; older segments past it are dropped
    (and counted in stats()["dropped_transitions"])."""
    retry_backoff_s: float = 0.05
    """First retry delay after a connection error (doubles per failure)."""
    retry_backoff_max_s: float = 2.0
    """Longest retry delay."""
    close_flush_timeout_s: float = 10.0
    """close() keeps retrying unsent segments this long before counting them as dropped."""
    sample_cache_bytes: int = 2 << 30
    """Memory the sampler may use: when the whole capacity fits, it mirrors the replay (each segment is read
    from Redis once); otherwise it reads just the rows of each sampled window (GETRANGE)."""
    max_record_bytes: int = 256 << 20
    """Largest encoded segment accepted (codec max_buffer_size)."""
    socket_timeout_s: float = 10.0
    """Redis socket connect/read timeout."""

    def __post_init__(self) -> None:
        if isinstance(self.urls, str):
            object.__setattr__(self, "urls", (self.urls,))
        else:
            object.__setattr__(self, "urls", tuple(self.urls))
        if self.capacity_transitions <= 0:
            raise ValueError("capacity_transitions must be positive")

    def __repr__(self) -> str:
        fields = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr]
        return f"ReplayConfig(urls={tuple(redact_url(u) for u in self.urls)!r}, {', '.join(fields)})"

    def priority_params(self) -> PriorityParams:
        return PriorityParams(self.priority_alpha, self.priority_beta, self.priority_eps)

    def rate_limiter(self) -> RateLimiter | None:
        """A limiter when any rate limiting is configured, else None (sampling an empty replay raises)."""
        if self.samples_per_insert is None and self.min_size_to_sample <= 1:
            return None
        return RateLimiter(self.samples_per_insert, self.min_size_to_sample, self.rate_error_buffer,
                           self.rate_timeout_s)
