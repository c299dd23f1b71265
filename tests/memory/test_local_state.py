"""LocalReplay.state / load: what an inline checkpoint keeps of the replay comes back whole, through the
checkpoint's own weights_only torch format (learner.checkpoint's arrays)."""

from __future__ import annotations

import io

import numpy as np
import torch

from ami.learner.learner import array_tree, tensor_tree
from ami.memory.local import LocalReplay
from tests.memory.replay_helpers import make_segment


def _filled(capacity: int, seed: int, prioritized: bool = False) -> LocalReplay:
    rep = LocalReplay(capacity, seed=seed, prioritized=prioritized)
    base = 0
    for i, n in enumerate([7, 5, 9, 3, 6]):
        rep.add(make_segment(n, base, terminated=(n - 1,) if i % 2 else (), version=i))
        base += 1000
    return rep


def _through_a_checkpoint(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save({"replay": tensor_tree(state)}, buf)
    return array_tree(torch.load(io.BytesIO(buf.getvalue()), weights_only=True)["replay"])


def test_a_loaded_replay_samples_what_the_saved_one_would() -> None:
    saved, twin = _filled(100, seed=4), _filled(100, seed=11)
    loaded = LocalReplay(100, seed=11)
    loaded.load(_through_a_checkpoint(saved.state()))
    assert loaded.size() == saved.size() == 30
    assert loaded.stats() == twin.stats()  # counters come back
    for _ in range(3):  # same rng seed, same rows: the same windows, masks and versions as the replay that filled
        a, b = loaded.sample(16, 4), twin.sample(16, 4)
        assert a.keys == b.keys and np.array_equal(a.mask, b.mask) and np.array_equal(a.versions, b.versions)
        for k in b.data:
            assert a.data[k].dtype == b.data[k].dtype and np.array_equal(a.data[k], b.data[k]), k
    more = make_segment(4, 9000)
    loaded.add(more)  # and it goes on taking segments after them
    assert loaded.size() == 34 and loaded.stats()["inserted_segments"] == 6


def test_a_smaller_replay_keeps_the_newest_whole_segments() -> None:
    loaded = LocalReplay(16, seed=0)
    loaded.load(_filled(100, seed=0).state())
    assert loaded.size() == 9  # the last two segments (3 + 6); a third (9 more) would not fit in 16
    steps = set(loaded.sample(200, 1).data["step"][:, 0].tolist())
    assert steps == {*range(3000, 3003), *range(4000, 4006)}


def test_priorities_survive_the_checkpoint() -> None:
    saved = _filled(64, seed=0, prioritized=True)
    batch = saved.sample(8, 1)
    saved.update_priorities(batch.keys, np.linspace(0.1, 5.0, 8))
    loaded = LocalReplay(64, seed=0, prioritized=True)
    loaded.load(_through_a_checkpoint(saved.state()))
    assert np.isclose(loaded._part.tree.total, saved._part.tree.total)
    assert loaded._max_priority == saved._max_priority == 5.0
    uniform = LocalReplay(64, seed=0, prioritized=True)
    uniform.load(_filled(64, seed=0).state())  # from a uniform replay: every row at the top priority
    mass = uniform._part.tree.get(np.arange(30))
    assert np.allclose(mass, mass[0]) and mass[0] > 0
