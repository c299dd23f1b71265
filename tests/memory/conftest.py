"""Fixtures for the replay-memory tests: a segment factory whose rows carry unique step ids."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from memory.core import Segment, SegmentMeta


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


@pytest.fixture
def seg_factory():
    return make_segment


@pytest.fixture
def window_reference():
    return expected_window


BACKENDS = ["local", "redis", "redis_lru"]


@pytest.fixture(params=BACKENDS)
def make_replay(request):
    """make(capacity, seed=None, share_with=None, **ReplayConfig fields) -> a replay of the parametrized backend.

    share_with=other returns a second handle on the same stored data (for Redis a separate client on the same
    namespace, for LocalReplay the same object with the new sampling settings).
    """
    from memory.config import ReplayConfig
    from memory.local import LocalReplay
    from memory.redis_replay import RedisReplay

    made = []
    backend = "local" if request.param == "local" else "redis"
    urls = (request.getfixturevalue("redis_server").url,) if backend == "redis" else ()
    extra = {"sample_cache_bytes": 0} if request.param == "redis_lru" else {}  # fetch per batch, no mirror
    namespace = f"test:{uuid.uuid4().hex[:12]}"

    def make(capacity, seed=None, share_with=None, **kw):
        cfg = ReplayConfig(backend=backend, capacity_transitions=capacity, seed=seed, urls=urls,
                           namespace=namespace, **{**extra, **kw})
        if share_with is not None and backend == "local":
            share_with._limiter = cfg.rate_limiter()
            share_with._rng = np.random.default_rng(seed)
            return share_with
        rep = LocalReplay.from_config(cfg) if backend == "local" else RedisReplay(cfg)
        made.append(rep)
        return rep

    yield make
    for rep in made:
        rep.close()
    if urls:
        delete_namespace(urls[0], namespace)


def delete_namespace(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
