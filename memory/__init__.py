"""Replay memory: msgpack codec, Redis backend, embedded redis-server, in-process backend.

Imports stay light (no torch, no ray); the Redis pieces are imported on first use.
"""

from memory.codec import CorruptRecord, decode_segment, encode_segment
from memory.config import EmbeddedRedisConfig, ReplayConfig, redact_url
from memory.core import REQUIRED_COLUMNS, SCHEMA_VERSION, Batch, ReplayMemory, Segment, SegmentMeta
from memory.limiter import RateLimiter, RateLimitTimeout
from memory.local import LocalReplay
from memory.sampling import PriorityParams

__all__ = [
    "REQUIRED_COLUMNS", "SCHEMA_VERSION", "Batch", "CorruptRecord", "EmbeddedRedisConfig", "LocalReplay",
    "PriorityParams", "RateLimitTimeout", "RateLimiter", "ReplayConfig", "ReplayMemory", "Segment",
    "SegmentMeta", "decode_segment", "encode_segment", "redact_url",
]
