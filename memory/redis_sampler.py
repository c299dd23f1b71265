"""The reading half of RedisReplay for one shard: an incrementally synced copy of the segment index, plus the
data in one of two modes, chosen from the first segment's row size:

* mirror — the whole shard fits the memory budget: each segment is fetched once with MGET, decoded and copied
  into a columnar ring (an Arena indexed by offset); a batch is then one fancy-index gather per column.
  Segments never change once written, so the copy is exact; Redis traffic equals insert traffic.
* ranges — it does not fit: the reader keeps only each segment's layout (column offsets, from a short GETRANGE
  of its header) and fetches just the rows of each window with pipelined GETRANGEs.
"""

from __future__ import annotations

import logging

import numpy as np

from ami.memory.codec import CorruptRecord, Layout, decode_segment, read_layout
from ami.memory.index import SegmentIndex, SumTree
from ami.memory.redis_shard import COUNTERS, Shard
from ami.memory.sampling import Part, PriorityParams
from ami.memory.windows import Arena, gather_segments, schema_of

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
        self.mirror: bool | None = None  # decided on the first segment seen
        self.schema = None
        self.layouts: dict[int, Layout] = {}  # ranges mode: column offsets of known segments
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
        self.layouts.clear()
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
        if self.layouts or self.bad:
            for sid in dropped.tolist():
                self.layouts.pop(sid, None)
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
    def _decide_mode(self, schema) -> None:
        self.schema = schema
        row_bytes = sum(np.dtype(dt).itemsize * int(np.prod(shape)) for _, dt, shape in schema)
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
        ids = self.index.view("ids")[pos]
        return np.fromiter((int(i) in self.layouts for i in ids), bool, len(ids))

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
            if self.mirror is None:
                self._fetch_layouts(missing[:1])
            if self.mirror:
                self._fetch_segments(missing)
            elif self.mirror is not None:
                self._fetch_layouts(missing)
            ok &= self.resident(pos_c)
        return ok

    def _corrupt(self, p: int, sid: int, err: Exception) -> None:
        log.warning("replay shard %s: skipping corrupt segment %d (%s)", self.shard.label, sid, err)
        self._reject(np.array([p]), "corrupt_skipped")

    def _check(self, p: int, length: int, schema) -> None:
        if length != self.index.view("lens")[p]:
            raise CorruptRecord("length differs from the index entry")
        if self.schema is None:
            self._decide_mode(schema)
        elif schema != self.schema:
            raise CorruptRecord("columns differ from the rest of the replay")

    def _fetch_segments(self, positions: np.ndarray) -> None:
        ids = self.index.view("ids")[positions]
        blobs = self.shard.client.mget([self.shard.seg_key(int(i)) for i in ids])
        gone = []
        for p, sid, blob in zip(positions, ids, blobs, strict=True):
            if blob is None:
                gone.append(p)  # evicted since the last sync, or an index entry with no value
                continue
            try:
                seg = decode_segment(blob, self.max_record_bytes)
                self._check(p, len(seg), schema_of(seg.data))
            except CorruptRecord as e:
                self._corrupt(p, sid, e)
                continue
            self.c["fetched_segments"] += 1
            self.c["fetched_bytes"] += len(blob)
            self.arena.put(int(self.index.view("starts")[p]), seg.data)
        if gone:
            self._reject(np.array(gone), "missing_skipped")

    def _fetch_layouts(self, positions: np.ndarray, prefix: int = 2048) -> None:
        ids = [int(i) for i in self.index.view("ids")[positions]]
        keys = [self.shard.seg_key(i) for i in ids]
        pipe = self.shard.client.pipeline(transaction=False)
        for k in keys:
            pipe.strlen(k)
            pipe.getrange(k, 0, prefix - 1)
        res = pipe.execute()
        gone, longer = [], []
        for j, (p, sid) in enumerate(zip(positions, ids, strict=True)):
            total, head = res[2 * j], res[2 * j + 1]
            if not total:
                gone.append(p)
                continue
            try:
                lay = read_layout(head, total, self.max_record_bytes)
                if lay is None:
                    if len(head) < total:
                        longer.append(p)
                        continue
                    raise CorruptRecord("truncated header")
                self._check(p, lay.length, tuple(sorted((c[0], c[1].str, c[2][1:]) for c in lay.columns)))
            except CorruptRecord as e:
                self._corrupt(p, sid, e)
                continue
            if self.mirror:  # the first segment decided on mirror mode: it is fetched whole by the caller
                return
            self.layouts[sid] = lay
        if gone:
            self._reject(np.array(gone), "missing_skipped")
        if longer and prefix < self.max_record_bytes:
            self._fetch_layouts(np.array(longer), prefix * 32)

    # ------------------------------------------------------------------ windows
    def gather(self, offsets: np.ndarray, window: int) -> tuple[dict, np.ndarray, np.ndarray, bool]:
        """(data, mask, versions, all_present) for windows starting at the given (prepared) offsets."""
        pos = self.index.locate(offsets)
        starts, lens = self.index.view("starts")[pos], self.index.view("lens")[pos]
        versions = self.index.view("versions")[pos]
        if not self.resident(pos).all():
            return {}, np.zeros(0, bool), versions, False
        if self.mirror:
            data, mask = self.arena.gather(offsets, starts + lens, window)
            return data, mask, versions, True
        ids, rows = self.index.view("ids")[pos], offsets - starts
        stops = np.minimum(rows + window, lens)
        ranges = []
        for sid, r, e in zip(ids.tolist(), rows.tolist(), stops.tolist(), strict=True):
            lay, key = self.layouts[sid], self.shard.seg_key(sid)
            ranges += [(key, *lay.row_range(k, r, e)) for k in range(len(lay.columns))]
        blobs = self.shard.getranges(ranges)
        minis, j = [], 0
        for sid, r, e in zip(ids.tolist(), rows.tolist(), stops.tolist(), strict=True):
            mini = {}
            for name, dt, shape, _, rb in self.layouts[sid].columns:
                blob = blobs[j]
                j += 1
                if len(blob) != (e - r) * rb:  # evicted while we read: try the batch again
                    return {}, np.zeros(0, bool), versions, False
                mini[name] = np.frombuffer(blob, dt).reshape(e - r, *shape[1:])
            minis.append(mini)
        self.c["fetched_bytes"] += sum(map(len, blobs))
        data, mask = gather_segments(minis, np.arange(len(minis)), np.zeros(len(minis), np.int64), window)
        return data, mask, versions, True
