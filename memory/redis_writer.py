"""The writing half of RedisReplay: a bounded buffer, round-robin over shards, retry with backoff, drop counting.

Accounting invariant (per writer): added = written + dropped + buffered, in transitions. Writes are pipelined
(up to `write_pipeline_depth` batches in flight per shard). A batch whose reply did not arrive is resent
verbatim under the same (writer id, sequence number), with every batch sent after it; the write script skips a
batch it has already applied and applies only the one after the last it applied, so a reply lost in a crash never
duplicates data and a batch that failed inside a pipeline is never overtaken (and then lost) by the next. Only
segments that were never sent are dropped (oldest first) when the buffer exceeds its bound; each one is counted.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid

import numpy as np
import redis

from ami.memory.codec import encode_segment
from ami.memory.core import Segment
from ami.memory.redis_shard import Shard, is_retryable
from ami.memory.windows import schema_of

log = logging.getLogger("ami.memory")


class _Link:
    """Writer state for one shard: batches sent but not yet acknowledged (resent verbatim after an error) and
    the backoff clock."""

    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        self.seq = 0
        self.acked = 0  # highest seq whose reply said applied (the server may lose those in a crash: see the script)
        self.inflight: collections.deque[tuple[int, list[tuple[int, int, bytes]]]] = collections.deque()
        self.broken = False  # the connection failed: every in-flight batch must be resent
        self.retry_at = 0.0
        self.failures = 0

    def ready(self) -> bool:
        return time.monotonic() >= self.retry_at


class Writer:
    def __init__(self, shards: list[Shard], config, seed: int | None = None) -> None:
        self.cfg = config
        self.depth = max(1, int(getattr(config, "write_pipeline_depth", 2)))
        self.links = [_Link(s) for s in shards]
        self.writer_id = uuid.uuid4().hex
        self.epoch = uuid.uuid4().hex
        self.pending: collections.deque[tuple[int, int, bytes]] = collections.deque()
        self.pending_transitions = 0
        self._rr = int(np.random.default_rng(seed).integers(len(shards)))
        self._schema = None
        self._quick = None
        self._cap = min(link.shard.capacity for link in self.links)
        self.c = dict(added_transitions=0, written_transitions=0, written_segments=0, dropped_transitions=0,
                      dropped_segments=0, write_retries=0, write_errors=0)

    # ------------------------------------------------------------------ public
    def add(self, segment: Segment) -> None:
        blob = encode_segment(segment)  # validates
        n = len(segment)
        if n > self._cap:
            raise ValueError(f"segment of {n} steps exceeds the per-shard capacity {self._cap}")
        quick = tuple((k, v.dtype, v.shape[1:]) for k, v in segment.data.items())
        if quick != self._quick:  # a full (order-insensitive) comparison only when the cheap one differs
            schema = schema_of(segment.data)
            if self._schema is not None and schema != self._schema:
                raise ValueError(f"segment columns {schema} differ from this writer's {self._schema}")
            self._schema, self._quick = schema, quick
        self.pending.append((n, int(segment.meta.policy_version), blob))
        self.pending_transitions += n
        self.c["added_transitions"] += n
        if len(self.pending) >= self.cfg.write_flush_segments:
            self.pump()
        self._enforce_bound()

    def buffered_transitions(self) -> int:
        inflight = sum(r[0] for link in self.links for _, recs in link.inflight for r in recs)
        return self.pending_transitions + inflight

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything buffered and wait for the acknowledgements, retrying with backoff; True when
        nothing is left unsent or unacknowledged."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self.pump()
            self.settle()
            if not self.pending and not any(link.inflight for link in self.links):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            wake = min((link.retry_at for link in self.links if link.retry_at > now), default=now)
            nap = max(wake - now, 0.0005)
            time.sleep(nap if deadline is None else min(nap, max(deadline - now, 0.0)))

    def settle(self) -> None:
        """Wait for the replies of every batch already sent (so reads see this writer's data)."""
        for link in self.links:
            for _ in range(3):  # a NOSCRIPT reply (new server) is resent at once
                if link.broken and link.ready():
                    self._resend(link)
                while link.inflight and not link.broken and link.shard.writes_outstanding:
                    self._complete(link)
                if not link.broken:
                    break

    def drop_all(self) -> None:
        """Give up on everything unsent or unacknowledged (counted as dropped)."""
        for link in self.links:
            link.shard.abort_writes()
            for _, recs in link.inflight:
                self._count_drop(recs)
            link.inflight.clear()
        self._count_drop(list(self.pending))
        self.pending.clear()
        self.pending_transitions = 0

    # ------------------------------------------------------------------ internals
    def _count_drop(self, records) -> None:
        self.c["dropped_transitions"] += sum(r[0] for r in records)
        self.c["dropped_segments"] += len(records)

    def _enforce_bound(self) -> None:
        bound = self.cfg.write_buffer_transitions
        dropped = []
        while self.pending and self.pending_transitions > bound:
            rec = self.pending.popleft()
            self.pending_transitions -= rec[0]
            dropped.append(rec)
        if dropped:
            self._count_drop(dropped)
            log.warning("replay writer buffer full: dropped %d transitions (total %d)",
                        sum(r[0] for r in dropped), self.c["dropped_transitions"])

    def _take_chunk(self) -> list[tuple[int, int, bytes]]:
        chunk, size = [], 0
        while self.pending and (not chunk or size + len(self.pending[0][2]) <= self.cfg.write_batch_bytes):
            rec = self.pending.popleft()
            self.pending_transitions -= rec[0]
            chunk.append(rec)
            size += len(rec[2])
        return chunk

    def pump(self) -> None:
        """Resend batches of recovered shards, then hand pending segments to healthy shards in turn, keeping
        up to `depth` batches in flight per shard (waits only for the oldest reply of a full pipeline)."""
        for link in self.links:
            if link.broken and link.ready():
                self._resend(link)
        k = len(self.links)
        idle = 0
        while self.pending and idle < k:
            link = self.links[self._rr % k]
            self._rr += 1
            if link.broken or not link.ready():
                idle += 1
                continue
            idle = 0
            if len(link.inflight) >= self.depth and not self._complete(link):
                continue
            link.seq += 1
            link.inflight.append((link.seq, self._take_chunk()))
            self._send(link, *link.inflight[-1])

    def _send(self, link: _Link, seq: int, records) -> bool:
        try:
            link.shard.send_write(self.writer_id, seq, self.epoch, records, link.acked)
            return True
        except Exception as e:
            self._failed(link, e)
            return False

    def _resend(self, link: _Link) -> None:
        link.broken = False
        for seq, records in list(link.inflight):
            if not self._send(link, seq, records):
                return
        while link.inflight and not link.broken:
            self._complete(link)

    def _complete(self, link: _Link) -> bool:
        """Read the reply of the oldest in-flight batch of `link`; False if the shard failed."""
        try:
            link.shard.read_write()
        except Exception as e:
            self._failed(link, e)
            return False
        link.acked, records = link.inflight.popleft()
        self.c["written_transitions"] += sum(r[0] for r in records)
        self.c["written_segments"] += len(records)
        if link.failures:
            log.info("replay shard %s reachable again after %d retries", link.shard.label, link.failures)
        link.failures = 0
        link.retry_at = 0.0
        return True

    def _failed(self, link: _Link, e: Exception) -> None:
        link.shard.abort_writes()
        if not is_retryable(e):  # e.g. a script error: retrying cannot help, so the batches are dropped
            self.c["write_errors"] += 1
            for _, recs in link.inflight:
                self._count_drop(recs)
            link.inflight.clear()
            raise e
        link.broken = True
        if isinstance(e, redis.exceptions.NoScriptError):  # a new server behind the same address: resend now
            link.retry_at = 0.0
            return
        link.failures += 1
        self.c["write_retries"] += 1
        delay = min(self.cfg.retry_backoff_max_s, self.cfg.retry_backoff_s * 2 ** (link.failures - 1))
        link.retry_at = time.monotonic() + delay
        if link.failures == 1:
            log.warning("replay shard %s unreachable (%s); buffering and retrying", link.shard.label,
                        type(e).__name__)
