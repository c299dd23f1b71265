"""Fixtures for the replay-memory tests: a segment factory whose rows carry unique step ids."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from tests.memory.replay_helpers import delete_namespace, expected_window, make_segment


@pytest.fixture
def seg_factory():
    return make_segment


@pytest.fixture
def window_reference():
    return expected_window


BACKENDS = ["local", "redis", "redis_ranges"]


@pytest.fixture(params=BACKENDS)
def make_replay(request):
    """make(capacity, seed=None, share_with=None, **ReplayConfig fields) -> a replay of the parametrized backend.

    share_with=other returns a second handle on the same stored data (for Redis a separate client on the same
    namespace, for LocalReplay the same object with the new sampling settings).
    """
    from ami.memory.config import ReplayConfig
    from ami.memory.local import LocalReplay
    from ami.memory.redis_replay import RedisReplay

    made = []
    backend = "local" if request.param == "local" else "redis"
    urls = (request.getfixturevalue("redis_server").url,) if backend == "redis" else ()
    # redis_ranges: no mirror, the sampler GETRANGEs the rows of each window
    extra = {"sample_cache_bytes": 0} if request.param == "redis_ranges" else {}
    namespace = f"test:{uuid.uuid4().hex[:12]}"

    def make(capacity, seed=None, share_with=None, **kw):
        cfg = ReplayConfig(capacity_transitions=capacity, seed=seed, urls=urls,
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
