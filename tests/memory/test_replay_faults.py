"""Crashes and restarts of a real redis-server: the writer recovers and accounts for every transition; the
append-only file brings content and counters back."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import redis

from ami.memory import redis_shard
from ami.memory.codec import decode_segment
from ami.memory.config import EmbeddedRedisConfig, ReplayConfig
from ami.memory.embedded import EmbeddedRedis
from ami.memory.redis_replay import RedisReplay
from tests.memory.replay_helpers import make_segment


def _content(url: str, ns: str) -> dict[int, tuple[int, ...]]:
    """segment id -> its step ids, read straight from Redis."""
    client = redis.Redis.from_url(url)
    ids = [int(m.split(b":")[0]) for m in client.zrange(f"{ns}:idx", 0, -1)]
    blobs = client.mget([f"{ns}:seg:{i}" for i in ids]) if ids else []
    client.close()
    return {i: tuple(decode_segment(b).data["step"].tolist()) for i, b in zip(ids, blobs, strict=True)}


@pytest.fixture
def server(tmp_path, request):
    fsync = getattr(request, "param", "everysec")
    srv = EmbeddedRedis(EmbeddedRedisConfig(dir=str(tmp_path / "redis"), appendonly=True, appendfsync=fsync))
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("server", ["always"], indirect=True)
def test_sigkill_during_writes_writer_recovers_and_counts_drops(server):
    cfg = ReplayConfig(urls=(server.url,), namespace="f", capacity_transitions=1_000_000,
                       write_buffer_transitions=300, retry_backoff_s=0.01, retry_backoff_max_s=0.1,
                       socket_timeout_s=2.0)
    writer = RedisReplay(cfg)
    n_segs, seg_len = 800, 10
    started, errors, final = threading.Event(), [], {}

    def run():
        try:
            for i in range(n_segs):
                writer.add(make_segment(seg_len, 100 * i))
                if i == 100:
                    started.set()
                time.sleep(0.001)
            final["flushed"] = writer.flush(timeout_s=15)
        except Exception as e:  # pragma: no cover - reported by the assertion below
            errors.append(e)
            started.set()

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(20)
    server.kill()  # SIGKILL mid-stream
    time.sleep(0.5)
    server.start()  # same dir, same port: the AOF (fsync always) restores every acknowledged write
    t.join(60)
    assert not errors and final["flushed"]
    st = writer.stats()
    added = n_segs * seg_len
    assert st["added_transitions"] == added
    assert st["dropped_transitions"] > 0, "the outage should have overflowed the 300-transition buffer"
    assert st["write_retries"] > 0
    assert st["written_transitions"] + st["dropped_transitions"] == added
    assert st["buffered_transitions"] == 0
    assert st["inserted_transitions"] == st["written_transitions"]  # server agrees: nothing lost, no duplicate
    content = _content(server.url, "f")
    firsts = sorted(steps[0] for steps in content.values())
    assert len(firsts) == len(set(firsts)) == st["written_segments"]
    assert st["dropped_segments"] == n_segs - len(firsts)
    assert sum(map(len, content.values())) + st["dropped_transitions"] == added
    writer.close()


def test_a_batch_that_fails_inside_a_pipeline_is_resent_not_lost(server, monkeypatch):
    # batch 3 of 10 fails on the server (an unknown script: a retryable NOSCRIPT reply) while batch 4, pipelined
    # behind it, is fine: batch 4 must wait for 3, and the resent 3 must be applied, not skipped as a duplicate
    cfg = ReplayConfig(urls=(server.url,), namespace="p", capacity_transitions=10_000, write_flush_segments=100,
                       write_batch_bytes=1, write_pipeline_depth=2, retry_backoff_s=0.01)
    rep = RedisReplay(cfg)
    real, calls = redis_shard.Shard.send_write, []

    def send(self, writer_id, seq, *rest):
        calls.append(seq)
        sha = redis_shard.WRITE_LUA_SHA
        if len(calls) == 3:
            redis_shard.WRITE_LUA_SHA = b"0" * 40  # this one batch names a script the server does not have
        try:
            return real(self, writer_id, seq, *rest)
        finally:
            redis_shard.WRITE_LUA_SHA = sha

    monkeypatch.setattr(redis_shard.Shard, "send_write", send)
    for i in range(10):
        rep.add(make_segment(10, 100 * i))
    assert rep.flush(timeout_s=10)
    assert calls[:4] == [1, 2, 3, 4] and calls.count(3) == 2  # 4 went out behind 3; 3 was sent again
    st = rep.stats()
    assert st["dropped_transitions"] == 0
    assert st["written_transitions"] == st["inserted_transitions"] == 100  # the server holds what it counted
    assert sorted(steps[0] for steps in _content(server.url, "p").values()) == [100 * i for i in range(10)]
    assert st["lost_batches"] == 0

    # a server that lost the last two acknowledged batches (an AOF's last second): the writer goes on, it cannot
    # resend what it no longer holds, and the loss is counted rather than waited for
    client = redis.Redis.from_url(server.url)
    client.hset("p:writers", rep._writer.writer_id, 8)
    client.close()
    rep.add(make_segment(10, 1000))
    assert rep.flush(timeout_s=5)
    st = rep.stats()
    assert st["lost_batches"] == 2 and st["inserted_transitions"] == 110
    rep.close()


def test_aof_everysec_content_and_counters_survive_restart(server):
    cfg = ReplayConfig(urls=(server.url,), namespace="d", capacity_transitions=300, seed=0)
    rep = RedisReplay(cfg)
    rng = np.random.default_rng(0)
    for i in range(60):
        rep.add(make_segment(int(rng.integers(1, 20)), 100 * i, terminated=[2]))
    for _ in range(5):
        rep.sample(64, 4)
    before = rep.stats()
    content = _content(server.url, "d")
    assert before["evicted_segments"] > 0 and before["sampled_windows"] == 320

    time.sleep(1.5)  # everysec: let the AOF reach the disk, then crash
    server.kill()
    server.start()
    fresh = RedisReplay(cfg)
    after = fresh.stats()
    for key in ("size_transitions", "size_segments", "inserted_transitions", "inserted_segments",
                "evicted_transitions", "evicted_segments", "sampled_windows"):
        assert after[key] == before[key], key
    assert _content(server.url, "d") == content
    stored = {s for steps in content.values() for s in steps}
    assert set(fresh.sample(256, 1).data["step"][:, 0].tolist()) <= stored

    # the old handles carry on against the restarted server (same epoch: the sampler keeps its copy)
    rep.add(make_segment(5, 99_000))
    assert rep.sample(16, 2).mask.shape == (16, 2)
    # a clean restart (SIGTERM: redis fsyncs on shutdown) keeps even the newest writes without waiting
    server.restart()
    assert fresh.stats()["inserted_segments"] == before["inserted_segments"] + 1
    assert 99_000 in {s for steps in _content(server.url, "d").values() for s in steps}
    rep.close()
    fresh.close()


OWNER = """
import sys, time
from ami.memory.config import EmbeddedRedisConfig
from ami.memory.embedded import EmbeddedRedis
srv = EmbeddedRedis(EmbeddedRedisConfig(appendonly=True))
srv.start()
print(srv.pid, srv.dir, srv.url, flush=True)
time.sleep(600)
"""


def test_a_sigkilled_owner_leaves_no_redis_server_and_no_temp_dir(tmp_path) -> None:
    """The guard stops the private server (and removes its temporary directory) when its owner is SIGKILLed:
    no atexit handler runs then, so without the guard the server would live on."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=root, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(root)})
    pid, data_dir, url = owner.stdout.readline().split()
    client = redis.Redis.from_url(url)
    assert client.ping() and Path(f"/proc/{pid}").exists() and Path(data_dir).is_dir()
    # the guard must not fire while the owner lives, nor when it only drops its other references
    time.sleep(0.5)
    assert client.ping()
    client.close()
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    deadline = time.monotonic() + 15
    while (Path(f"/proc/{pid}/cmdline").exists() and b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes()
           or Path(data_dir).exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = Path(f"/proc/{pid}/cmdline").exists() and b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert not alive and not Path(data_dir).exists()


def test_stop_and_restart_never_trigger_the_guard(tmp_path) -> None:
    srv = EmbeddedRedis(EmbeddedRedisConfig(dir=str(tmp_path / "r"), appendonly=True))
    srv.start()
    first = srv.pid
    srv.restart()  # the old guard is gone before the old server stops: it must not kill the new one
    time.sleep(0.5)
    assert srv.running and srv.pid != first and redis.Redis.from_url(srv.url).ping()
    srv.stop()
    assert not srv.running and (tmp_path / "r").exists()  # a directory the caller gave is the caller's


def test_an_actor_starting_while_redis_is_down_waits_for_it(server):
    """RunKeys.new_incarnation (called as an actor process starts) waits out an outage instead of raising: raised,
    it failed the actor's creation, Ray restarted it into the same failure, and the driver stopped the run (seen in
    a soak: a Redis restart while a resumed run's actors started)."""
    from ami.memory.run_keys import RunKeys

    keys = RunKeys(server.url, "ami:down-at-start", socket_timeout_s=0.5)
    assert keys.new_incarnation() == 1
    server.kill()
    got: dict = {}
    t = threading.Thread(target=lambda: got.setdefault("n", keys.new_incarnation(nap_s=0.05)))
    t.start()
    time.sleep(1.0)
    assert t.is_alive() and not got  # still waiting: Redis is down
    server.start()  # same port and AOF
    t.join(10)
    assert got.get("n") == 2
    keys.close()


def test_a_run_ending_during_an_outage_counts_what_the_replay_held(server):
    """The driver's count of stored steps (cluster/ray_driver.py) is kept from its last poll in which Redis
    answered: once Redis is gone, the final count is that one, not 0."""
    from ami.cluster.ray_driver import RayBackend

    cfg = ReplayConfig(urls=(server.url,), namespace="o", capacity_transitions=10_000, socket_timeout_s=1.0,
                       retry_backoff_s=0.01, retry_backoff_max_s=0.05)
    writer = RedisReplay(cfg)
    for i in range(5):
        writer.add(make_segment(10, 100 * i))
    assert writer.flush(timeout_s=5)
    driver = object.__new__(RayBackend)  # only its replay view: no Ray needed for this rule
    driver.replay, driver.inserted0, driver._inserted_seen = RedisReplay(cfg), 0, 0
    assert driver.replay_stats()["inserted_transitions"] == 50  # a poll of the driver loop
    server.kill()
    assert driver.replay_stats() is None or driver.replay_stats()["shards_reachable"] == 0
    assert driver._inserted() == 50
