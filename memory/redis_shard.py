"""One Redis shard of the replay: connection, key layout and the Lua scripts that keep it consistent.

Keys under namespace NS (per shard):
    NS:seg:<id>   encoded segment (memory.codec)
    NS:idx        sorted set, member "<id>:<length>:<policy_version>", score = start offset of the segment
    NS:prio:<id>  optional little-endian float32 priority per row (0 = never set)
    NS:ctr        hash of counters: head, tail, next_id, inserted_*, evicted_*, sampled_windows, epoch, ...
    NS:writers    hash writer id -> last applied batch sequence number (retried writes are applied once, in order)
    NS:tmp:<writer>:<i>  staging names, only ever alive inside one MULTI/EXEC
A write is one MULTI/EXEC: the encoded values are SET under staging names (so Redis stores the bytes straight
from the socket, with no copy through Lua) and one script then RENAMEs them to their ids (O(1)), adds the index
entries, updates the counters and evicts the oldest segments (value, priorities and index entry together).
The whole transaction is atomic and lands in the AOF as one unit.
"""

from __future__ import annotations

import collections
import hashlib

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ami.memory.config import redact_url

WRITE_LUA = r"""
-- KEYS: ctr, idx, writers. ARGV: seg prefix, prio prefix, tmp prefix, capacity, writer id, seq, epoch, acked
-- (the writer's highest batch the server acknowledged), then (length, policy version) per record; record i was
-- SET at <tmp prefix><i> in the same MULTI.
local cap = tonumber(ARGV[4])
local seq = tonumber(ARGV[6])
local acked = tonumber(ARGV[8])
local n = (#ARGV - 8) / 2
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
if seq <= last then  -- applied before: its reply was lost
  for i = 0, n - 1 do redis.call('DEL', ARGV[3] .. i) end
  return {0, 0, 0}
end
-- only the next batch applies: one sent behind a batch that failed would otherwise be applied first, and the
-- failed one, resent, then skipped as a duplicate. A writer's acknowledged batches the server no longer knows of
-- (an AOF's last second lost in a crash) cannot come back: the writer goes on after them, and they are counted.
local expected = math.max(last, acked) + 1
if seq ~= expected then
  for i = 0, n - 1 do redis.call('DEL', ARGV[3] .. i) end
  return redis.error_reply('GAP batch ' .. seq .. ' waits for batch ' .. expected)
end
if acked > last then redis.call('HINCRBY', KEYS[1], 'lost_batches', acked - last) end
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[7])
local tail = tonumber(redis.call('HGET', KEYS[1], 'tail') or '0')
local first_id = redis.call('HINCRBY', KEYS[1], 'next_id', n) - n + 1
local t_new, z = 0, {}
for i = 0, n - 1 do
  local len, id = ARGV[9 + 2 * i], first_id + i
  redis.call('RENAME', ARGV[3] .. i, ARGV[1] .. id)
  z[#z + 1] = string.format('%d', tail)
  z[#z + 1] = string.format('%d', id) .. ':' .. len .. ':' .. ARGV[10 + 2 * i]
  tail = tail + tonumber(len)
  t_new = t_new + tonumber(len)
  if #z >= 1000 or i == n - 1 then
    redis.call('ZADD', KEYS[2], unpack(z))
    z = {}
  end
end
-- FIFO eviction: drop whole oldest segments (value, priorities, index entry) until tail - head <= capacity;
-- index members that are not ours are removed on the way and counted
local ev_s, ev_t, bad, head = 0, 0, 0, tail
local want = math.min(n + 2, 256)
while true do
  local first = redis.call('ZRANGE', KEYS[2], 0, want - 1, 'WITHSCORES')
  local drop, gone, keep = 0, {}, false
  for j = 1, #first, 2 do
    local id, len = string.match(first[j], '^(%d+):(%d+):%-?%d+$')
    if id == nil then
      bad = bad + 1
    else
      head = tonumber(first[j + 1])
      if tail - head <= cap then keep = true; break end
      gone[#gone + 1] = ARGV[1] .. id
      gone[#gone + 1] = ARGV[2] .. id
      ev_s = ev_s + 1
      ev_t = ev_t + tonumber(len)
    end
    drop = drop + 1
  end
  if drop > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, drop - 1) end
  if #gone > 0 then redis.call('UNLINK', unpack(gone)) end
  if keep then break end
  if #first < 2 * want then head = tail; break end
  want = 256
end
redis.call('HSET', KEYS[1], 'tail', string.format('%d', tail), 'head', string.format('%d', head))
redis.call('HINCRBY', KEYS[1], 'inserted_transitions', t_new)
redis.call('HINCRBY', KEYS[1], 'inserted_segments', n)
if ev_s > 0 then
  redis.call('HINCRBY', KEYS[1], 'evicted_segments', ev_s)
  redis.call('HINCRBY', KEYS[1], 'evicted_transitions', ev_t)
end
if bad > 0 then redis.call('HINCRBY', KEYS[1], 'corrupt_index', bad) end
return {n, ev_s, ev_t}
"""

WRITE_LUA_SHA = hashlib.sha1(WRITE_LUA.encode()).hexdigest().encode()


def _resp(args: list) -> bytes:
    """RESP array of bulk strings (bytes, str or int arguments)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


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
    if isinstance(err, RETRYABLE + (redis.exceptions.NoScriptError,)):
        return True
    msg = str(err)
    return isinstance(err, redis.exceptions.ResponseError) and msg.startswith(
        ("OOM", "BUSY", "LOADING", "MASTERDOWN", "READONLY", "GAP"))


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
        self.p_seg, self.p_prio, self.p_tmp = f"{ns}:seg:", f"{ns}:prio:", f"{ns}:tmp:"
        self.namespace = ns
        self._prio = self.client.register_script(PRIORITY_LUA)
        self._script_loaded = False  # SCRIPT LOAD again after any connection failure (the server may be new)
        self._wconn = None  # connection holding outstanding pipelined writes
        self._awaiting: collections.deque[int] = collections.deque()

    def __repr__(self) -> str:
        return f"Shard({self.label!r}, namespace={self.namespace!r})"

    def seg_key(self, seg_id: int) -> str:
        return f"{self.p_seg}{seg_id}"

    def send_write(self, writer_id: str, seq: int, epoch: str, records: list[tuple[int, int, bytes]],
                   acked: int = 0) -> None:
        """Send one write transaction for (length, policy_version, blob) records without waiting for the reply
        (read it with read_write; several may be outstanding on the writer's connection). `acked`: the writer's
        highest seq this shard acknowledged; the server applies only batch max(its last, acked) + 1."""
        tmp = f"{self.p_tmp}{writer_id}:"
        if not self._script_loaded:
            self.client.script_load(WRITE_LUA)
            self._script_loaded = True
        script = [b"EVALSHA", WRITE_LUA_SHA, b"3", self.k_ctr, self.k_idx, self.k_writers, self.p_seg, self.p_prio,
                  tmp, self.capacity, writer_id, seq, epoch, acked]
        # Hand-packed RESP for MULTI, n × SET, EVALSHA, EXEC: the values go out as they are (no copy, one sendall
        # each) and the small parts are coalesced; redis-py's connection still handles connect/auth/TLS/parsing.
        out: list = []
        head = [b"*1\r\n$5\r\nMULTI\r\n"]
        for i, (length, version, blob) in enumerate(records):
            key = f"{tmp}{i}".encode()
            head.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(blob)))
            out += [b"".join(head), blob]
            head = [b"\r\n"]
            script += [length, version]
        head += [_resp(script), b"*1\r\n$4\r\nEXEC\r\n"]
        out.append(b"".join(head))
        if self._wconn is None:
            self._wconn = self.client.connection_pool.get_connection()
        try:
            self._wconn.send_packed_command(out, check_health=False)
        except BaseException:
            self.abort_writes()
            raise
        self._awaiting.append(len(records) + 2)

    def read_write(self) -> list[int]:
        """Reply of the oldest outstanding write: [segments, evicted segments, evicted transitions] (all zero when
        that (writer, seq) batch had been applied before). Any error drops the connection and every outstanding
        write (the caller resends them in order; the script skips those already applied and refuses, with a GAP
        error, one whose predecessor it has not applied)."""
        conn, n = self._wconn, self._awaiting.popleft()
        try:
            errors = []
            for _ in range(n):  # +OK for MULTI, +QUEUED for every queued command
                try:
                    conn.read_response()
                except redis.exceptions.ResponseError as e:
                    errors.append(e)
            result = conn.read_response()  # EXEC: list of replies (or EXECABORT)
            if errors:
                raise errors[0]
            if isinstance(result[-1], Exception):
                raise result[-1]
        except BaseException:
            self.abort_writes()
            raise
        if not self._awaiting:
            self.client.connection_pool.release(conn)
            self._wconn = None
        return result[-1]

    def getranges(self, ranges: list[tuple[str, int, int]]) -> list[bytes]:
        """Pipelined GETRANGE key start end (inclusive) for every triple; one round trip."""
        parts = []
        for key, a, b in ranges:
            k = key.encode()
            sa, sb = str(a).encode(), str(b).encode()
            parts.append(b"*4\r\n$8\r\nGETRANGE\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                         % (len(k), k, len(sa), sa, len(sb), sb))
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([b"".join(parts)], check_health=False)
            return [conn.read_response() for _ in ranges]
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    @property
    def writes_outstanding(self) -> int:
        return len(self._awaiting)

    def abort_writes(self) -> None:
        self._script_loaded = False
        if self._wconn is not None:
            self._wconn.disconnect()
            self.client.connection_pool.release(self._wconn)
        self._wconn = None
        self._awaiting.clear()

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
        self.abort_writes()
        self.client.close()
