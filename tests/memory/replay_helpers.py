"""Helpers for the replay-memory tests: segments whose rows carry unique step ids, a window reference."""

from __future__ import annotations

import numpy as np
import redis

from ami.memory.core import Segment, SegmentMeta


def make_segment(length: int, base: int, *, terminated=(), truncated=(), version: int = 0, actor_id: int = 0,
                 episode_id: int = 0, first_step: int = 0, image: bool = False) -> Segment:
    """Rows t = 0..length-1 hold step id base + t in "step" (int64) and obs[:, 0] (float32, exact < 2**24)."""
    t = np.arange(length)
    step = (base + t).astype(np.int64)
    data = {
        "obs": np.stack([step, -step, step * 0.5], axis=1).astype(np.float32),
        "action": (step % 7).astype(np.float32)[:, None],
        "reward": (step * 0.25).astype(np.float32),
        "terminated": np.isin(t, terminated),
        "truncated": np.isin(t, truncated),
        "next_obs": np.stack([step + 1, -step - 1, (step + 1) * 0.5], axis=1).astype(np.float32),
        "step": step,
    }
    if image:
        data["pixels"] = (step[:, None, None, None] + np.arange(4 * 4 * 3).reshape(1, 4, 4, 3)).astype(np.uint8)
    return Segment(data, SegmentMeta(actor_id, "Test-v0", episode_id, first_step, version))


def expected_window(seg: Segment, row: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference: (step ids [W], mask [W]) of the window starting at `row` of `seg`."""
    n = len(seg)
    steps, mask, last = [], [], row
    ended = False
    for j in range(window):
        r = row + j
        ok = r < n and not ended
        if ok:
            last = r
            ended = bool(seg.data["terminated"][r] or seg.data["truncated"][r])
        steps.append(int(seg.data["step"][last]))
        mask.append(ok)
    return np.array(steps), np.array(mask)


def delete_namespace(url: str, namespace: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
