"""Replay memory: msgpack codec, Redis backend, embedded redis-server, in-process backend.

Imports stay light (no torch, no ray); the Redis pieces are imported on first use.
"""

from ami.memory.codec import CorruptRecord, decode_segment, encode_segment
from ami.memory.config import EmbeddedRedisConfig, ReplayConfig, redact_url
from ami.memory.core import REQUIRED_COLUMNS, SCHEMA_VERSION, Batch, ReplayMemory, Segment, SegmentMeta
from ami.memory.limiter import RateLimiter, RateLimitTimeout
from ami.memory.local import LocalReplay
from ami.memory.sampling import PriorityParams

_LAZY = {
    "RedisReplay": "ami.memory.redis_replay", "ReplayUnreachable": "ami.memory.redis_replay",
    "check_urls": "ami.memory.redis_replay",
    "EmbeddedRedis": "ami.memory.embedded", "RedisServerNotFound": "ami.memory.embedded",
}


def __getattr__(name: str):
    """Redis-backed names load on first use, so `import ami.memory` works where redis-py is absent."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ami.memory' has no attribute {name!r}")


__all__ = [
    "EmbeddedRedis", "RedisReplay", "RedisServerNotFound", "ReplayUnreachable", "check_urls",
    "REQUIRED_COLUMNS", "SCHEMA_VERSION", "Batch", "CorruptRecord", "EmbeddedRedisConfig", "LocalReplay",
    "PriorityParams", "RateLimitTimeout", "RateLimiter", "ReplayConfig", "ReplayMemory", "Segment",
    "SegmentMeta", "decode_segment", "encode_segment", "redact_url",
]
