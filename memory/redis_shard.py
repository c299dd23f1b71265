"""One Redis shard of the replay: connection, key layout and the Lua scripts that keep it consistent.

Keys under namespace NS (per shard):
    NS:seg:<id>   encoded segment (memory.codec)
    NS:idx        sorted set, member "<id>:<length>:<policy_version>", score = start offset of the segment
    NS:prio:<id>  optional little-endian float32 priority per row (0 = never set)
    NS:ctr        hash of counters: head, tail, next_id, inserted_*, evicted_*, sampled_windows, epoch, ...
    NS:writers    hash writer id -> last applied batch sequence number (makes retried writes idempotent)
Every write runs as one script, so a segment, its index entry, the counters and the eviction of the oldest
segments (value, priorities and index entry together) change atomically.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memory.config import redact_url

WRITE_LUA = r"""
local cap = tonumber(ARGV[3])
local seq = tonumber(ARGV[5])
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[4]) or '-1')
if seq <= last then return {0, 0, 0} end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[6])
local tail = tonumber(redis.call('HGET', KEYS[1], 'tail') or '0')
local n_new, t_new = 0, 0
for i = 7, #ARGV, 3 do
  local id = redis.call('HINCRBY', KEYS[1], 'next_id', 1)
  redis.call('SET', ARGV[1] .. id, ARGV[i + 2])
  redis.call('ZADD', KEYS[2], string.format('%d', tail), id .. ':' .. ARGV[i] .. ':' .. ARGV[i + 1])
  tail = tail + tonumber(ARGV[i])
  n_new = n_new + 1
  t_new = t_new + tonumber(ARGV[i])
end
local ev_s, ev_t, bad, head = 0, 0, 0, tail
while true do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #first == 0 then head = tail; break end
  local id, len = string.match(first[1], '^(%d+):(%d+):%-?%d+$')
  if id == nil then
    redis.call('ZREM', KEYS[2], first[1])
    bad = bad + 1
  else
    head = tonumber(first[2])
    if tail - head <= cap then break end
    redis.call('ZREM', KEYS[2], first[1])
    redis.call('DEL', ARGV[1] .. id, ARGV[2] .. id)
    ev_s = ev_s + 1
    ev_t = ev_t + tonumber(len)
  end
end
redis.call('HSET', KEYS[1], 'tail', string.format('%d', tail), 'head', string.format('%d', head))
redis.call('HINCRBY', KEYS[1], 'inserted_transitions', t_new)
redis.call('HINCRBY', KEYS[1], 'inserted_segments', n_new)
if ev_s > 0 then
  redis.call('HINCRBY', KEYS[1], 'evicted_segments', ev_s)
  redis.call('HINCRBY', KEYS[1], 'evicted_transitions', ev_t)
end
if bad > 0 then redis.call('HINCRBY', KEYS[1], 'corrupt_index', bad) end
return {n_new, ev_s, ev_t}
"""

PRIORITY_LUA = r"""
for i = 4, #ARGV, 3 do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 1 then
    redis.call('SETRANGE', ARGV[2] .. ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2])
  end
end
local m = tonumber(redis.call('HGET', KEYS[1], 'max_priority') or '0')
if tonumber(ARGV[3]) > m then redis.call('HSET', KEYS[1], 'max_priority', ARGV[3]) end
return 1
"""

COUNTERS = ("epoch", "head", "tail", "inserted_transitions", "sampled_windows", "max_priority")
"""Fields of NS:ctr the sampler reads on every sync, in this order."""

RETRYABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError)
"""Errors that mean "the server is (momentarily) unreachable": retry, never crash the writer."""


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, RETRYABLE):
        return True
    msg = str(err)
    return isinstance(err, redis.exceptions.ResponseError) and msg.startswith(("OOM", "BUSY", "LOADING",
                                                                               "MASTERDOWN", "READONLY"))


class Shard:
    """Connection + keys + scripts of one shard. The password never leaves `client`."""

    def __init__(self, url: str, namespace: str, capacity: int, socket_timeout_s: float) -> None:
        self.label = redact_url(url)
        self.capacity = int(capacity)
        try:
            self.client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=0)
        except ValueError:
            raise ValueError(f"invalid redis url {self.label!r}") from None
        ns = namespace
        self.k_ctr, self.k_idx, self.k_writers = f"{ns}:ctr", f"{ns}:idx", f"{ns}:writers"
        self.p_seg, self.p_prio = f"{ns}:seg:", f"{ns}:prio:"
        self.namespace = ns
        self._write = self.client.register_script(WRITE_LUA)
        self._prio = self.client.register_script(PRIORITY_LUA)

    def __repr__(self) -> str:
        return f"Shard({self.label!r}, namespace={self.namespace!r})"

    def seg_key(self, seg_id: int) -> str:
        return f"{self.p_seg}{seg_id}"

    def write(self, writer_id: str, seq: int, epoch: str, records: list[tuple[int, int, bytes]]) -> list[int]:
        """Insert (length, policy_version, blob) records; returns [segments, evicted segs, evicted transitions]
        (all zero when this (writer, seq) batch was already applied)."""
        args: list = [self.p_seg, self.p_prio, self.capacity, writer_id, seq, epoch]
        for length, version, blob in records:
            args += [length, version, blob]
        return self._write(keys=[self.k_ctr, self.k_idx, self.k_writers], args=args)

    def set_priorities(self, triples: list[tuple[int, int, bytes]], max_priority: float) -> None:
        """(segment id, byte offset, float32 bytes) triples; segments evicted meanwhile are skipped."""
        args: list = [self.p_seg, self.p_prio, repr(float(max_priority))]
        for t in triples:
            args += list(t)
        self._prio(keys=[self.k_ctr], args=args)

    def delete_all(self) -> int:
        """Delete every key of this namespace (SCAN + UNLINK); returns how many."""
        n = 0
        batch = []
        for key in self.client.scan_iter(match=f"{self.namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                n += self.client.unlink(*batch)
                batch = []
        if batch:
            n += self.client.unlink(*batch)
        return n

    def close(self) -> None:
        self.client.close()
