"""Window extraction with episode-end masks, vectorised.

Rule (memory.core.Batch): step j of a window is valid while it lies in the window's segment and no step before
it (0..j-1) ended the episode (terminated or truncated); the step that ends the episode is itself valid.
Masked steps repeat the last valid row.
"""

from __future__ import annotations

import numpy as np

Schema = tuple[tuple[str, str, tuple[int, ...]], ...]


def schema_of(data: dict[str, np.ndarray]) -> Schema:
    """(name, dtype, per-step shape) of every column, sorted by name."""
    return tuple(sorted((k, np.asarray(v).dtype.str, tuple(np.shape(v)[1:])) for k, v in data.items()))


def _valid_mask(done: np.ndarray, in_seg: np.ndarray) -> np.ndarray:
    """done, in_seg: [B, W] bool → mask [B, W] (prefix-shaped)."""
    d = done.astype(np.int32)
    earlier = (np.cumsum(d, axis=1) - d) > 0
    return in_seg & ~earlier


class Arena:
    """A columnar ring of `rows` transitions; global offset o lives in slot o % rows.

    `owner[slot]` remembers which offset a slot currently holds, so a reader can tell whether a segment is
    resident (its slots were not overwritten by a later one).
    """

    def __init__(self, rows: int) -> None:
        if rows <= 0:
            raise ValueError("arena needs at least one row")
        self.rows = rows
        self.cols: dict[str, np.ndarray] = {}
        self.schema: Schema | None = None
        self.owner = np.full(rows, -1, np.int64)

    def _allocate(self, data: dict[str, np.ndarray]) -> None:
        for k in ("terminated", "truncated"):
            if np.ndim(data[k]) != 1:
                raise ValueError(f"column {k!r} must hold one flag per step")
        self.schema = schema_of(data)
        # np.zeros maps lazily: untouched rows of a large ring cost no memory until written
        self.cols = {k: np.zeros((self.rows, *s), dtype=np.dtype(dt)) for k, dt, s in self.schema}

    def check(self, data: dict[str, np.ndarray]) -> None:
        """Raise ValueError if `data` does not fit this arena's column schema (allocating it on first use)."""
        if self.schema is None:
            self._allocate(data)
        elif schema_of(data) != self.schema:
            raise ValueError(f"segment columns {schema_of(data)} differ from this replay's {self.schema}")

    def put(self, offset: int, data: dict[str, np.ndarray]) -> None:
        """Write a segment whose first transition has global offset `offset`."""
        self.check(data)
        n = len(data["reward"])
        if n > self.rows:
            raise ValueError(f"segment of {n} steps exceeds arena of {self.rows} rows")
        s = offset % self.rows
        first = min(n, self.rows - s)
        for k, col in self.cols.items():
            v = data[k]
            col[s:s + first] = v[:first]
            if first < n:
                col[:n - first] = v[first:]
        slots = (offset + np.arange(n)) % self.rows
        self.owner[slots] = offset + np.arange(n)

    def resident(self, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """Whether each segment (start offset, length) is fully held (checks its first and last slot)."""
        starts = np.asarray(starts, np.int64)
        last = starts + np.asarray(lens, np.int64) - 1
        return (self.owner[starts % self.rows] == starts) & (self.owner[last % self.rows] == last)

    def gather(self, starts: np.ndarray, seg_ends: np.ndarray, window: int) -> tuple[dict, np.ndarray]:
        """Windows starting at global offsets `starts`, each inside a segment ending (exclusive) at seg_ends."""
        j = np.arange(window, dtype=np.int64)
        off = starts[:, None] + j
        in_seg = off < seg_ends[:, None]
        off = np.minimum(off, seg_ends[:, None] - 1)
        slots = off % self.rows
        done = (self.cols["terminated"][slots] != 0) | (self.cols["truncated"][slots] != 0)
        mask = _valid_mask(done, in_seg)
        last = mask.sum(axis=1, keepdims=True) - 1
        slots = (starts[:, None] + np.minimum(j, last)) % self.rows
        return {k: c[slots] for k, c in self.cols.items()}, mask


def gather_segments(segs: list[dict[str, np.ndarray]], which: np.ndarray, rows: np.ndarray,
                    window: int) -> tuple[dict, np.ndarray]:
    """Windows from decoded segments: window b starts at row rows[b] of segs[which[b]] (one copy per window)."""
    b_n = len(which)
    first = segs[int(which[0])]
    out = {k: np.empty((b_n, window, *v.shape[1:]), v.dtype) for k, v in first.items()}
    mask = np.zeros((b_n, window), bool)
    for b in range(b_n):
        seg = segs[int(which[b])]
        r = int(rows[b])
        stop = min(r + window, len(seg["reward"]))
        done = (seg["terminated"][r:stop] != 0) | (seg["truncated"][r:stop] != 0)
        n = stop - r
        hit = np.flatnonzero(done)
        if hit.size:
            n = min(n, int(hit[0]) + 1)
        mask[b, :n] = True
        for k, o in out.items():
            col = seg[k]
            o[b, :n] = col[r:r + n]
            if n < window:
                o[b, n:] = col[r + n - 1]
    return out, mask
