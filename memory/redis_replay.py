"""RedisReplay: the default replay backend — sharded, pipelined/Lua-scripted, durable, rate-limited.

One instance can write (actors), sample (learner) or both. Writes go through memory.redis_writer (buffer, retry,
drop counting); sampling through one memory.redis_sampler.ShardReader per shard. An instance is not
thread-safe: give each thread its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import redis

from ami.memory.config import ReplayConfig, redact_url
from ami.memory.core import Batch, Segment
from ami.memory.limiter import Counts
from ami.memory.redis_sampler import ShardReader
from ami.memory.redis_shard import Shard
from ami.memory.redis_writer import Writer
from ami.memory.sampling import draw

log = logging.getLogger("ami.memory")
SHARD_BITS = 8
"""Batch keys are (offset << SHARD_BITS) | shard."""


class ReplayUnreachable(ConnectionError):
    """A Redis URL of the replay cannot be reached (the message shows the URL with its password redacted)."""


def check_urls(urls: Sequence[str], timeout_s: float = 2.0) -> None:
    """PING every URL once; raise ReplayUnreachable naming the first that fails (password redacted)."""
    for url in urls:
        try:
            client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError:
            raise ReplayUnreachable(f"invalid redis url {redact_url(url)!r}") from None
        try:
            client.ping()
        except redis.exceptions.RedisError as e:
            raise ReplayUnreachable(f"cannot reach redis at {redact_url(url)}: {type(e).__name__}") from None
        finally:
            client.close()


class RedisReplay:
    """Replay memory in one or more Redis servers; implements memory.core.ReplayMemory."""

    def __init__(self, config: ReplayConfig, urls: str | Sequence[str] | None = None) -> None:
        urls = config.urls if urls is None else ((urls,) if isinstance(urls, str) else tuple(urls))
        if not urls:
            raise ValueError("RedisReplay needs at least one redis URL")
        if len(urls) > 1 << SHARD_BITS:
            raise ValueError(f"at most {1 << SHARD_BITS} shards")
        self.config = config
        self.capacity = config.capacity_transitions
        per_shard = math.ceil(config.capacity_transitions / len(urls))
        self.shards = [Shard(u, config.namespace, per_shard, config.socket_timeout_s) for u in urls]
        self._prio = config.priority_params() if config.prioritized else None
        self._rng = np.random.default_rng(config.seed)
        self._limiter = config.rate_limiter()
        self._writer = Writer(self.shards, config, seed=config.seed)
        budget = config.sample_cache_bytes // len(self.shards)
        self._readers = [ShardReader(s, self._prio, budget, config.max_record_bytes) for s in self.shards]
        self._sample_batches = 0
        self._closed = False

    def __repr__(self) -> str:
        return (f"RedisReplay(shards={[s.label for s in self.shards]!r}, namespace={self.config.namespace!r}, "
                f"capacity_transitions={self.capacity})")

    # ------------------------------------------------------------------ writing
    def add(self, segment: Segment) -> None:
        """Encode and queue a segment; sent at once when write_flush_segments is reached. Never raises on a
        lost connection: the segment stays buffered (bounded) and is retried with backoff."""
        self._writer.add(segment)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything buffered (retrying); True when nothing is left unsent."""
        return self._writer.flush(timeout_s)

    # ------------------------------------------------------------------ sampling
    def _sync(self) -> Counts:
        for r in self._readers:
            r.sync()
        return Counts(sum(r.size for r in self._readers), sum(r.inserted for r in self._readers),
                      sum(r.sampled + r.pending_sampled for r in self._readers))

    def sample(self, batch_size: int, window: int) -> Batch:
        if batch_size <= 0 or window <= 0:
            raise ValueError("batch_size and window must be positive")
        self._writer.settle()
        if self._limiter is not None:
            self._limiter.wait(batch_size, self._sync)
        elif self._sync().size == 0:
            raise ValueError("cannot sample from an empty replay")
        for _ in range(4):
            batch = self._try_sample(batch_size, window)
            if batch is not None:
                self._readers[0].pending_sampled += batch_size
                self._sample_batches += 1
                return batch
            self._sync()
        raise RuntimeError("replay changed under every sampling attempt (segments evicted while fetched)")

    def _try_sample(self, batch_size: int, window: int) -> Batch | None:
        parts = [r.part for r in self._readers]
        shard = np.empty(batch_size, np.int64)
        offs = np.empty(batch_size, np.int64)
        weights = np.empty(batch_size, np.float32)
        filled = 0
        for attempt in range(32):
            if attempt:
                self._sync()
            if not any(p.index.transitions for p in parts) or (self._prio and not any(
                    p.tree.total > 0 for p in parts)):
                raise ValueError("no sampleable transitions left (all stored segments are corrupt or missing)")
            need = batch_size - filled
            which, o, w = draw(parts, need, self._rng, self._prio)
            ok = np.zeros(need, bool)
            for k, reader in enumerate(self._readers):
                sel = np.flatnonzero(which == k)
                if sel.size:
                    ok[sel] = reader.prepare(o[sel])
            acc = np.flatnonzero(ok)
            shard[filled:filled + acc.size], offs[filled:filled + acc.size] = which[acc], o[acc]
            weights[filled:filled + acc.size] = w[acc]
            filled += acc.size
            if filled == batch_size:
                break
        else:
            raise RuntimeError(f"could draw only {filled}/{batch_size} windows from the replay")
        return self._assemble(shard, offs, weights, window)

    def _assemble(self, shard, offs, weights, window) -> Batch | None:
        if len(self._readers) == 1:
            data, mask, versions, ok = self._readers[0].gather(offs, window)
            if not ok:
                return None
        else:
            data, mask, versions = {}, np.zeros((len(offs), window), bool), np.empty(len(offs), np.int64)
            for k, reader in enumerate(self._readers):
                sel = np.flatnonzero(shard == k)
                if not sel.size:
                    continue
                d, m, v, ok = reader.gather(offs[sel], window)
                if not ok:
                    return None
                for name, arr in d.items():
                    if name not in data:
                        data[name] = np.empty((len(offs), *arr.shape[1:]), arr.dtype)
                    data[name][sel] = arr
                mask[sel], versions[sel] = m, v
        keys = ((offs << SHARD_BITS) | shard).tolist()
        return Batch(data=data, mask=mask, weights=weights, keys=keys, versions=np.asarray(versions, np.int64))

    @property
    def prioritized(self) -> bool:
        """True when sampling follows priorities (update_priorities is then worth calling)."""
        return self._prio is not None

    def update_priorities(self, keys: list, priorities: np.ndarray) -> None:
        if self._prio is None:
            return
        keys = np.asarray(keys, np.int64)
        pr = np.abs(np.asarray(priorities, np.float64)).reshape(-1)
        if keys.shape != pr.shape:
            raise ValueError("keys and priorities must have the same length")
        _, last = np.unique(keys[::-1], return_index=True)  # duplicates: the last value wins
        keys, pr = keys[::-1][last], pr[::-1][last]
        shard, offs = keys & ((1 << SHARD_BITS) - 1), keys >> SHARD_BITS
        top = float(pr.max()) if pr.size else 0.0
        for k, reader in enumerate(self._readers):
            sel = (shard == k) & reader.part.live(offs)
            if not sel.any():
                continue
            o, p = offs[sel], pr[sel]
            reader.part.tree.set(reader.part.slots(o), self._prio.mass(p))
            reader.max_priority = max(reader.max_priority, top)
            pos = reader.index.locate(o)
            ids, rows = reader.index.view("ids")[pos], o - reader.index.view("starts")[pos]
            vals = np.maximum(p, 1e-30).astype("<f4")
            triples = [(int(i), int(r) * 4, v.tobytes()) for i, r, v in zip(ids, rows, vals, strict=True)]
            reader.shard.set_priorities(triples, reader.max_priority)

    # ------------------------------------------------------------------ info
    def size(self) -> int:
        """Transitions stored in Redis now (all shards; excludes this writer's unsent buffer)."""
        self._writer.settle()
        pipe_vals = []
        for s in self.shards:
            head, tail = s.client.hmget(s.k_ctr, ("head", "tail"))
            pipe_vals.append(max(0, int(tail or 0) - int(head or 0)))
        return sum(pipe_vals)

    def stats(self) -> dict[str, float]:
        self._writer.settle()
        out: dict[str, float] = {}
        fields = ("inserted_transitions", "inserted_segments", "evicted_transitions", "evicted_segments",
                  "sampled_windows", "corrupt_index", "lost_batches")
        size = segments = reachable = 0
        for r in self._readers:
            s = r.shard
            try:
                pipe = s.client.pipeline(transaction=True)
                if r.pending_sampled:
                    pipe.hincrby(s.k_ctr, "sampled_windows", r.pending_sampled)
                pipe.hmget(s.k_ctr, ("head", "tail", *fields))
                pipe.zcard(s.k_idx)
                res = pipe.execute()
            except redis.exceptions.RedisError:
                continue  # unreachable shard: its server-side counters are left out, shards_reachable says so
            reachable += 1
            r.pending_sampled = 0
            vals = [int(v or 0) for v in res[-2]]
            size += max(0, vals[1] - vals[0])
            segments += int(res[-1])
            for f, v in zip(fields, vals[2:], strict=True):
                out[f] = out.get(f, 0.0) + v
        out["shards_reachable"] = float(reachable)
        out["size_transitions"], out["size_segments"] = float(size), float(segments)
        out["capacity_transitions"] = float(self.capacity)
        out["shards"] = float(len(self.shards))
        corrupt = out.pop("corrupt_index", 0.0)
        for r in self._readers:
            for k, v in r.c.items():
                out[k] = out.get(k, 0.0) + v
        out["corrupt_skipped"] = out.get("corrupt_skipped", 0.0) + corrupt
        for k, v in self._writer.c.items():
            out[k] = float(v)
        out["buffered_transitions"] = float(self._writer.buffered_transitions())
        out["sample_batches"] = float(self._sample_batches)
        out["rate_limit_wait_s"] = self._limiter.waited_s if self._limiter else 0.0
        return out

    def clear(self) -> None:
        """Delete every key of this replay's namespace on every shard (tests, fresh runs)."""
        for s in self.shards:
            s.delete_all()
        for r in self._readers:
            r._reset()
            r.epoch = None

    def close(self) -> None:
        """Flush (up to close_flush_timeout_s), count anything still unsent as dropped, close connections."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._writer.flush(self.config.close_flush_timeout_s):
                log.warning("replay closed with unsent segments; counted as dropped")
            self._writer.drop_all()
            for r in self._readers:
                if r.pending_sampled:
                    try:
                        r.shard.client.hincrby(r.shard.k_ctr, "sampled_windows", r.pending_sampled)
                        r.pending_sampled = 0
                    except redis.exceptions.RedisError:
                        pass
        finally:
            for s in self.shards:
                s.close()

    def __enter__(self) -> RedisReplay:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
