"""The reading half of RedisReplay for one shard: an incrementally synced copy of the segment index, and the
segments themselves, fetched once each with MGET and kept decoded (segments never change once written).

When the whole shard fits the memory budget the reader mirrors it in a columnar ring (an Arena indexed by
offset), so a batch of windows is one fancy-index gather per column; otherwise it keeps the most recently used
decoded segments and copies windows out of them one by one.
"""

from __future__ import annotations

import collections
import logging

import numpy as np

from memory.codec import CorruptRecord, decode_segment
from memory.index import SegmentIndex, SumTree
from memory.redis_shard import COUNTERS, Shard
from memory.sampling import Part, PriorityParams
from memory.windows import Arena, gather_segments, schema_of

log = logging.getLogger("ami.memory")


def _int(v, default: int = 0) -> int:
    try:
        return int(v) if v is not None else default
    except ValueError:
        return default


class ShardReader:
    def __init__(self, shard: Shard, prio: PriorityParams | None, cache_bytes: int, max_record_bytes: int):
        self.shard = shard
        self.prio = prio
        self.cache_bytes = cache_bytes
        self.max_record_bytes = max_record_bytes
        self.index = SegmentIndex()
        self.part = Part(self.index, SumTree(shard.capacity) if prio else None)
        self.epoch: bytes | None = None
        self.arena: Arena | None = None
        self.mirror: bool | None = None  # decided on the first decoded segment
        self.schema = None
        self.cache: collections.OrderedDict[int, dict] = collections.OrderedDict()
        self.cache_used = 0
        self.bad: set[int] = set()
        self.foreign: set[bytes] = set()  # index members that are not ours (counted once, never sampled)
        self.size = self.inserted = self.sampled = 0
        self.pending_sampled = 0
        self.max_priority = 1.0
        self.c = dict(corrupt_skipped=0, missing_skipped=0, fetched_segments=0, fetched_bytes=0)

    # ------------------------------------------------------------------ index sync
    def _reset(self) -> None:
        self.index.reset()
        if self.part.tree is not None:
            self.part.tree = SumTree(self.shard.capacity)
        if self.arena is not None:
            self.arena.owner[:] = -1
        self.cache.clear()
        self.cache_used = 0
        self.bad.clear()
        self.foreign.clear()

    def sync(self) -> None:
        """One MULTI/EXEC round trip: counters + index entries added since the last sync."""
        sh = self.shard
        full = len(self.index) == 0
        pipe = sh.client.pipeline(transaction=True)
        if self.pending_sampled:
            pipe.hincrby(sh.k_ctr, "sampled_windows", self.pending_sampled)
        pipe.hmget(sh.k_ctr, COUNTERS)
        pipe.zrangebyscore(sh.k_idx, self.index.tail if not full else "-inf", "+inf", withscores=True)
        res = pipe.execute()
        self.pending_sampled = 0
        ctr, members = res[-2], res[-1]
        epoch, head, tail = ctr[0], _int(ctr[1]), _int(ctr[2])
        if epoch != self.epoch:
            had_data = self.epoch is not None or len(self.index)
            self.epoch = epoch
            if had_data:
                log.warning("replay shard %s was reset or replaced; dropping the local copy", sh.label)
                self._reset()
                return self.sync()
        self.size, self.inserted, self.sampled = max(0, tail - head), _int(ctr[3]), _int(ctr[4])
        if ctr[5] is not None:
            self.max_priority = max(self.max_priority, float(ctr[5]))
        dropped, starts, lens = self.index.drop_before(head)
        self.part.forget(starts, lens)
        if self.cache or self.bad:
            for sid in dropped.tolist():
                self._uncache(sid)
                self.bad.discard(sid)
        self._append(members, full, tail)

    def _append(self, members, full: bool, server_tail: int) -> None:
        ids, starts, lens, vers = [], [], [], []
        tail = self.index.tail
        for m, score in members:
            try:
                sid, n, ver = (int(x) for x in m.split(b":"))
                start = int(score)
                if n <= 0 or start < tail or sid < 0 or start + n > server_tail:
                    raise ValueError
            except ValueError:
                if m not in self.foreign and len(self.foreign) < 100_000:
                    self.foreign.add(m)
                    self.c["corrupt_skipped"] += 1
                continue
            ids.append(sid), starts.append(start), lens.append(n), vers.append(ver)
            tail = start + n
        if not ids:
            return
        self.index.append(ids, starts, lens, vers)
        if self.prio is None:
            return
        default = self.prio.mass(self.max_priority)
        stored = self._stored_priorities(ids) if full else [None] * len(ids)
        for s, n, p in zip(starts, lens, stored, strict=True):
            mass = np.full(n, default)
            if p is not None:
                set_ = p[:n] > 0
                mass[: len(set_)][set_] = self.prio.mass(p[:n][set_])
            self.part.add_segment(s, n, mass)

    def _stored_priorities(self, ids: list[int]) -> list:
        vals = self.shard.client.mget([f"{self.shard.p_prio}{i}" for i in ids])
        out = []
        for v in vals:
            ok = isinstance(v, bytes) and len(v) % 4 == 0
            out.append(np.frombuffer(v, "<f4").astype(np.float64) if ok else None)
        return out

    # ------------------------------------------------------------------ fetching
    def _uncache(self, sid: int) -> None:
        data = self.cache.pop(sid, None)
        if data is not None:
            self.cache_used -= _nbytes(data)

    def _decide_mode(self, data: dict) -> None:
        row_bytes = sum(v.itemsize * int(np.prod(v.shape[1:])) for v in data.values())
        self.mirror = row_bytes * self.shard.capacity <= self.cache_bytes
        if self.mirror:
            self.arena = Arena(self.shard.capacity)

    def _reject(self, positions: np.ndarray, counter: str) -> None:
        ids, starts, lens = (self.index.view(f)[positions] for f in ("ids", "starts", "lens"))
        self.bad.update(int(i) for i in ids)
        self.c[counter] += len(ids)
        self.part.forget(starts, lens)

    def resident(self, pos: np.ndarray) -> np.ndarray:
        if self.mirror:
            return self.arena.resident(self.index.view("starts")[pos], self.index.view("lens")[pos])
        if self.mirror is None:
            return np.zeros(len(pos), bool)
        ids = self.index.view("ids")[pos]
        return np.fromiter((int(i) in self.cache for i in ids), bool, len(ids))

    def prepare(self, offsets: np.ndarray) -> np.ndarray:
        """For drawn start offsets: True where the window can be served (segment known, good, fetched)."""
        pos = self.index.locate(offsets)
        ok = pos >= 0
        pos_c = np.maximum(pos, 0)
        ok &= (offsets - self.index.view("starts")[pos_c]) < self.index.view("lens")[pos_c]
        if self.bad:
            ok &= ~np.isin(self.index.view("ids")[pos_c], np.fromiter(self.bad, np.int64, len(self.bad)))
        upos = np.unique(pos_c[ok])
        missing = upos[~self.resident(upos)]
        if missing.size:
            self._fetch(missing)
            ok &= self.resident(pos_c)
        return ok

    def _fetch(self, positions: np.ndarray) -> None:
        ids = self.index.view("ids")[positions]
        blobs = self.shard.client.mget([self.shard.seg_key(int(i)) for i in ids])
        gone = []
        for p, sid, blob in zip(positions, ids, blobs, strict=True):
            if blob is None:
                gone.append(p)  # evicted since the last sync, or an index entry with no value
                continue
            try:
                seg = decode_segment(blob, self.max_record_bytes)
                if len(seg) != self.index.view("lens")[p]:
                    raise CorruptRecord("length differs from the index entry")
                if self.schema is None:
                    self.schema = schema_of(seg.data)
                    self._decide_mode(seg.data)
                elif schema_of(seg.data) != self.schema:
                    raise CorruptRecord("columns differ from the rest of the replay")
            except CorruptRecord as e:
                log.warning("replay shard %s: skipping corrupt segment %d (%s)", self.shard.label, sid, e)
                self._reject(np.array([p]), "corrupt_skipped")
                continue
            self.c["fetched_segments"] += 1
            self.c["fetched_bytes"] += len(blob)
            if self.mirror:
                self.arena.put(int(self.index.view("starts")[p]), seg.data)
            else:
                self.cache[int(sid)] = seg.data
                self.cache_used += _nbytes(seg.data)
        if gone:
            self._reject(np.array(gone), "missing_skipped")

    # ------------------------------------------------------------------ windows
    def gather(self, offsets: np.ndarray, window: int) -> tuple[dict, np.ndarray, np.ndarray, bool]:
        """(data, mask, versions, all_resident) for windows starting at the given (prepared) offsets."""
        pos = self.index.locate(offsets)
        starts, lens = self.index.view("starts")[pos], self.index.view("lens")[pos]
        versions = self.index.view("versions")[pos]
        if not self.resident(pos).all():
            return {}, np.zeros(0, bool), versions, False
        if self.mirror:
            data, mask = self.arena.gather(offsets, starts + lens, window)
        else:
            ids = self.index.view("ids")[pos]
            uniq, which = np.unique(ids, return_inverse=True)
            segs = [self.cache[int(i)] for i in uniq]
            for i in uniq:
                self.cache.move_to_end(int(i))
            data, mask = gather_segments(segs, which, offsets - starts, window)
        return data, mask, versions, True

    def trim(self) -> None:
        while self.cache and self.cache_used > self.cache_bytes:
            _, data = self.cache.popitem(last=False)
            self.cache_used -= _nbytes(data)


def _nbytes(data: dict) -> int:
    return sum(v.nbytes for v in data.values())

